"""Block-sparse attention equals the dense masked reference in values and gradients."""
import warnings

import pytest
import torch

from sparsity_core.attention import (bigbird_block_mask, block_topk_mask, causal_mask, expand_blocks,
                                     local_mask, masked_attention)
from sparsity_core.attention.block_sparse import (block_gather_attention, block_index, block_layout,
                                                  flex_block_attention, flex_block_mask)

pytestmark = pytest.mark.usefixtures("one_thread")


def _qkv(shape, seed=0, dtype=torch.float64, dv=None):
    g = torch.Generator().manual_seed(seed)
    *lead, n, d = shape
    q, k = (torch.randn(*lead, n, d, generator=g, dtype=dtype) for _ in range(2))
    v = torch.randn(*lead, n, dv or d, generator=g, dtype=dtype)
    return q, k, v


def test_block_index_lists_kept_blocks_in_order_with_padding():
    bm = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    index, valid = block_index(bm)
    assert index.shape == (3, 4)
    assert index[0, :2].tolist() == [0, 2] and valid[0].tolist() == [True, True, False, False]
    assert not valid[1].any() and index[2].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("n,block", [(37, 8), (32, 8), (5, 8), (64, 16)])
def test_gather_equals_masked_reference_values_and_gradients(n, block):
    nb = -(-n // block)
    g = torch.Generator().manual_seed(n)
    block_mask = torch.rand(nb, nb, generator=g) < 0.5
    block_mask |= torch.eye(nb, dtype=torch.bool)
    if nb > 2:
        block_mask[1] = False                                                    # an empty query block
    mask = causal_mask(n)
    mask[n // 2] = False                                                         # a fully masked row
    q, k, v = (t.requires_grad_(True) for t in _qkv((2, 3, n, 4), dv=5))
    layout = block_layout(block_mask, block, n, mask=mask)
    fast = block_gather_attention(q, k, v, layout)
    assert layout.density == pytest.approx(float((mask & expand_blocks(block_mask, block, n)).float().mean()))
    q2, k2, v2 = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    slow = masked_attention(q2, k2, v2, mask & expand_blocks(block_mask, block, n))
    torch.testing.assert_close(fast, slow)
    w = torch.randn(fast.shape, generator=g, dtype=fast.dtype)
    (fast * w).sum().backward()
    (slow * w).sum().backward()
    for a, b in ((q, q2), (k, k2), (v, v2)):
        torch.testing.assert_close(a.grad, b.grad)


def test_gather_without_token_mask_and_with_bigbird_blocks():
    n, block = 48, 8
    bm = bigbird_block_mask(6, 1, generator=torch.Generator().manual_seed(0))
    q, k, v = _qkv((1, 2, n, 8))
    torch.testing.assert_close(block_gather_attention(q, k, v, block_layout(bm, block, n)),
                               masked_attention(q, k, v, expand_blocks(bm, block)))
    # all blocks kept + causal token mask = causal attention
    full = torch.ones(6, 6, dtype=torch.bool)
    torch.testing.assert_close(block_gather_attention(q, k, v, block_layout(full, block, n, mask=causal_mask(n))),
                               torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_flex_equals_the_reference_uncompiled():
    n, block = 40, 8
    q, k, v = _qkv((1, 2, n, 8), dtype=torch.float32)
    scores = torch.randn(5, 5, generator=torch.Generator().manual_seed(1))
    bm = block_topk_mask(scores, 2, causal=True)
    mask = local_mask(n, 20)
    mask[3] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flex = flex_block_attention(q, k, v, flex_block_mask(bm, block, n, mask=mask), compiled=False)
    ref = masked_attention(q, k, v, mask & expand_blocks(bm, block, n))
    torch.testing.assert_close(flex, ref, rtol=1e-5, atol=1e-5)


def test_bad_input():
    q, k, v = _qkv((1, 1, 16, 4))
    with pytest.raises(ValueError):
        block_layout(torch.ones(3, 3, dtype=torch.bool), 8, 16)                      # needs (2, 2)
    with pytest.raises(ValueError):
        block_layout(torch.ones(2, 2, dtype=torch.bool), 8, 16, mask=causal_mask(15))
    layout = block_layout(torch.ones(2, 2, dtype=torch.bool), 8, 16)
    with pytest.raises(ValueError):
        block_gather_attention(q, k[..., :8, :], v, layout)
    with pytest.raises(ValueError):
        block_gather_attention(q[..., :8, :], k[..., :8, :], v[..., :8, :], layout)    # layout is for N = 16
    flex_mask = flex_block_mask(torch.ones(2, 2, dtype=torch.bool), 8, 16)
    with pytest.raises(ValueError):
        flex_block_attention(q[0], k[0], v[0], flex_mask)
    with pytest.raises(ValueError):
        flex_block_attention(q[..., :8, :], k[..., :8, :], v[..., :8, :], flex_mask)
    with pytest.raises(ValueError):
        block_index(torch.ones(2, 2))
