"""The committed TinyGPT checkpoints: checksums, the recorded validation loss, a deterministic builder."""
import math

import pytest
import torch

from sparsity_core.assets import tinygpt as build
from sparsity_core.data.text import encode_corpus, load_bpe_tokenizer, text_splits
from sparsity_core.pretrained import load_tinygpt, tinygpt_card

#: The card's val loss is recorded on the build machine; another CPU may round the fp32
#: forward pass differently in the last bits, so the recomputed loss must agree to 1e-4.
VAL_LOSS_ATOL = 1e-4


@pytest.fixture(scope="module")
def val_tokens():
    return encode_corpus(text_splits("shakespeare").val, load_bpe_tokenizer())


@pytest.mark.parametrize("size", ["small", "medium"])
def test_checkpoint_reproduces_its_recorded_validation_loss(size, val_tokens):
    card = tinygpt_card(size)
    model = load_tinygpt(size)
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == card["params"] <= 10_000_000
    assert model.lm_head.weight is model.wte.weight
    assert card["val_tokens"] == val_tokens.numel()
    loss = build.validation_loss(model, val_tokens)
    assert abs(loss - card["val_loss_fp16"]) <= VAL_LOSS_ATOL
    assert math.exp(loss) < 1000  # far better than chance (V = 4096)


def test_medium_is_about_four_times_small():
    ratio = tinygpt_card("medium")["params"] / tinygpt_card("small")["params"]
    assert 2.5 <= ratio <= 5


def test_builder_is_deterministic():
    tokens = torch.randint(0, 4096, (5_000,), generator=torch.Generator().manual_seed(0))
    recipe = build.Recipe("small", steps=3, batch_size=2, lr=1e-3)
    a, rec_a = build.train(recipe, tokens, tokens, 4096, progress=False)
    b, rec_b = build.train(recipe, tokens, tokens, 4096, progress=False)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert rec_a["final_train_loss"] == rec_b["final_train_loss"]


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    r = build.Recipe("small", steps=100, batch_size=1, lr=1.0)
    lrs = [build.lr_schedule(s, r) for s in range(100)]
    warm = int(build.WARMUP_FRACTION * 100)
    assert lrs[warm - 1] == pytest.approx(1.0) and lrs[0] == pytest.approx(1 / warm)
    assert all(x >= y for x, y in zip(lrs[warm:], lrs[warm + 1:]))
    assert lrs[-1] == pytest.approx(build.MIN_LR_FRACTION, abs=1e-3)


def test_bad_size_raises():
    with pytest.raises(ValueError, match="size"):
        load_tinygpt("huge")
