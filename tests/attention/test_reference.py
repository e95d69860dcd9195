"""Dense masked attention equals PyTorch's SDPA wherever a row has a key, and is 0 where none."""
import pytest
import torch
import torch.nn.functional as F

from sparsity_core.attention import causal_mask, local_mask, masked_attention, masked_softmax

pytestmark = pytest.mark.usefixtures("one_thread")


def _qkv(B=2, H=3, N=11, D=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, N, D, generator=g, dtype=torch.float64) for _ in range(3)]


def test_equals_sdpa_full_causal_and_banded():
    q, k, v = _qkv()
    torch.testing.assert_close(masked_attention(q, k, v, None), F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(masked_attention(q, k, v, causal_mask(11)),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True))
    band = local_mask(11, 3)
    torch.testing.assert_close(masked_attention(q, k, v, band), F.scaled_dot_product_attention(q, k, v, attn_mask=band))


def test_fully_masked_rows_give_zeros_and_finite_gradients():
    q, k, v = [t.requires_grad_(True) for t in _qkv(N=6)]
    mask = causal_mask(6)
    mask[2] = False                                  # query 2 sees nothing
    out = masked_attention(q, k, v, mask)
    assert torch.equal(out[:, :, 2], torch.zeros_like(out[:, :, 2]))
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    assert torch.equal(q.grad[:, :, 2], torch.zeros_like(q.grad[:, :, 2]))
    keep = [0, 1, 3, 4, 5]
    ref = F.scaled_dot_product_attention(q.detach(), k.detach(), v.detach(), attn_mask=mask)
    torch.testing.assert_close(out.detach()[:, :, keep], ref[:, :, keep])


def test_bad_input():
    q, k, v = _qkv()
    with pytest.raises(TypeError):
        masked_attention(q, k, v, causal_mask(11).float())
    with pytest.raises(ValueError):
        masked_attention(q, k, v, causal_mask(5))
    with pytest.raises(ValueError):
        masked_attention(q, k[..., :4], v, None)
    with pytest.raises(ValueError):
        masked_softmax(torch.zeros(2, 3), torch.ones(2, 2, dtype=torch.bool))
