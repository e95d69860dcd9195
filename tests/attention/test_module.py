"""PatternAttention: the causal pattern reproduces TinyGPT's attention; SDPA path == explicit path."""
import pytest
import torch

from sparsity_core.attention import causal_mask, local_mask, masked_attention, strided_mask
from sparsity_core.attention.module import PatternAttention, pattern_attention
from sparsity_core.models import TinyGPT, TinyGPTConfig
from sparsity_core.models.tinygpt import CausalSelfAttention

CFG = TinyGPTConfig(vocab_size=11, block_size=12, n_layer=2, n_head=2, n_embd=8)


def _pair(mask):
    torch.manual_seed(0)
    dense = CausalSelfAttention(CFG)
    pat = PatternAttention(CFG, mask=mask)
    pat.load_state_dict(dense.state_dict())
    return dense.eval(), pat.eval()


def test_causal_pattern_equals_tinygpt_attention_values_and_gradients():
    dense, pat = _pair(causal_mask(CFG.block_size))
    x = torch.randn(3, 10, 8, requires_grad=True)
    y0 = dense(x)
    g0, = torch.autograd.grad(y0.square().sum(), x)
    y1 = pat(x)
    g1, = torch.autograd.grad(y1.square().sum(), x)
    torch.testing.assert_close(y1, y0)
    torch.testing.assert_close(g1, g0)


@pytest.mark.parametrize("per_head", [False, True])
def test_fast_path_equals_masked_reference(per_head):
    n = CFG.block_size
    mask = strided_mask(n, 3) if not per_head else torch.stack([local_mask(n, 2), strided_mask(n, 4)])
    _, pat = _pair(mask)
    x = torch.randn(2, n, 8, requires_grad=True)
    y_fast = pat(x)
    g_fast, = torch.autograd.grad(y_fast.sum(), x)
    pat.explicit = True
    y_slow = pat(x)
    g_slow, = torch.autograd.grad(y_slow.sum(), x)
    torch.testing.assert_close(y_fast, y_slow)
    torch.testing.assert_close(g_fast, g_slow)
    # the obvious twin: heads by hand through the dense masked reference
    q, k, v = pat.c_attn(x).split(8, dim=2)
    heads = lambda t: t.view(2, n, 2, 4).transpose(1, 2)
    y_ref = masked_attention(heads(q), heads(k), heads(v), mask).transpose(1, 2).reshape(2, n, 8)
    torch.testing.assert_close(y_fast, pat.c_proj(y_ref))


def test_non_causal_pattern_lets_a_token_hear_the_future():
    full = torch.ones(CFG.block_size, CFG.block_size, dtype=torch.bool)
    _, pat = _pair(full)
    x = torch.randn(1, 6, 8)
    x2 = x.clone()
    x2[0, 5] += 1.0
    assert not torch.allclose(pat(x)[0, 0], pat(x2)[0, 0])           # token 0 sees token 5


def test_factory_builds_a_model_and_per_layer_masks():
    n = CFG.block_size
    model = TinyGPT(CFG, attention=pattern_attention(lambda i: strided_mask(n, 2 + i)),
                    generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.blocks[1].attn.mask, strided_mask(n, 3))
    out = model(torch.randint(0, 11, (2, n)), torch.randint(0, 11, (2, n)))
    assert torch.isfinite(out.loss)


def test_bad_masks_are_refused():
    with pytest.raises(TypeError):
        PatternAttention(CFG, mask=torch.ones(12, 12))
    with pytest.raises(ValueError):
        PatternAttention(CFG, mask=torch.ones(8, 8, dtype=torch.bool))           # shorter than block_size
    with pytest.raises(ValueError):
        PatternAttention(CFG, mask=torch.ones(3, 12, 12, dtype=torch.bool))      # 3 heads for 2
    empty_row = causal_mask(12).clone()
    empty_row[4] = False
    with pytest.raises(ValueError):
        PatternAttention(CFG, mask=empty_row)
    with pytest.raises(TypeError):
        pattern_attention("strided")
