"""rotated_qk: softmax of the rotated scores is the layer's attention (a small random Llama)."""
import math

import pytest
import torch

from sparsity_core.pretrained.collect import collect
from sparsity_core.pretrained.rotary import rotated_qk


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    cfg._attn_implementation = "eager"
    return LlamaForCausalLM(cfg).eval()


def test_rotated_scores_give_the_layers_attention(tiny_llama):
    ids = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(1))
    acts = collect(tiny_llama, ids, ["q.*", "k.*", "attn_probs.*"])
    causal = torch.ones(20, 20, dtype=torch.bool).tril()
    for layer in range(2):
        q, k = rotated_qk(tiny_llama, acts[f"q.{layer}"], acts[f"k.{layer}"])
        assert q.shape == k.shape == (2, 4, 20, 8)
        probs = (q @ k.transpose(-2, -1) / math.sqrt(8)).masked_fill(~causal, float("-inf")).softmax(-1)
        torch.testing.assert_close(probs, acts[f"attn_probs.{layer}"], atol=1e-6, rtol=1e-5)
    # without the rotation the scores differ (the pre-rotary keys are not what attention uses)
    q0, k0 = acts["q.0"], acts["k.0"].repeat_interleave(2, dim=1)
    raw = (q0 @ k0.transpose(-2, -1) / math.sqrt(8)).masked_fill(~causal, float("-inf")).softmax(-1)
    assert not torch.allclose(raw, acts["attn_probs.0"], atol=1e-4)


def test_bad_shapes_and_models_are_refused(tiny_llama):
    with pytest.raises(ValueError):
        rotated_qk(tiny_llama, torch.randn(1, 3, 5, 8), torch.randn(1, 2, 5, 8))   # 2 does not divide 3
    with pytest.raises(TypeError):
        rotated_qk(torch.nn.Linear(2, 2), torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8))
