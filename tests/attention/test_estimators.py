"""Dynamic sparse attention: top-k oracle, Loki's PCA selection, Scatterbrain, routing masks."""
import pytest
import torch

from sparsity_core.attention import causal_mask, masked_attention
from sparsity_core.attention.estimators import (kmeans_routing_mask, loki_mask, pca_basis, positive_random_features,
                                                recall, scatterbrain_attention, topk_attention)
from sparsity_core.attention.patterns import topk_mask

pytestmark = pytest.mark.usefixtures("one_thread")


def _qkv(n=24, d=8, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=dtype) for _ in range(3)]


def test_topk_mask_keeps_the_k_largest_allowed_scores():
    s = torch.tensor([[3.0, 1.0, 2.0, 5.0], [0.0, 0.0, 1.0, -1.0]])
    # row 1 ties 0.0 at keys 0 and 1: the lower index wins
    assert topk_mask(s, 2).tolist() == [[True, False, False, True], [True, False, True, False]]
    causal = torch.tensor([[True, False, False, False], [True, True, True, True]])
    assert topk_mask(s, 2, causal)[0].tolist() == [True, False, False, False]  # only one allowed key
    with pytest.raises(ValueError):
        topk_mask(s, 5)


def test_topk_attention_with_all_keys_is_full_attention():
    q, k, v = _qkv()
    torch.testing.assert_close(topk_attention(q, k, v, 24), masked_attention(q, k, v, None))
    torch.testing.assert_close(topk_attention(q, k, v, 24, causal_mask(24)), masked_attention(q, k, v, causal_mask(24)))


def test_loki_selects_exactly_with_all_dimensions_and_with_the_keys_rank():
    q, k, _ = _qkv(n=40, d=8)
    oracle = topk_mask(q @ k.T / 8 ** 0.5, 6)
    basis = pca_basis(k)
    assert torch.allclose(basis.T @ basis, torch.eye(8, dtype=basis.dtype), atol=1e-10)
    assert recall(loki_mask(q, k, basis, 8, 6), oracle) == 1.0
    # keys of rank 3 (through the origin): 3 principal directions carry every score
    g = torch.Generator().manual_seed(1)
    low = torch.randn(40, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 8, generator=g, dtype=torch.float64)
    low = low - low.mean(0)                     # still in the same 3-dimensional row space
    oracle_low = topk_mask(q @ low.T / 8 ** 0.5, 6)
    scores_full = q @ low.T
    proj = pca_basis(low)[:, :3]
    assert torch.allclose((q @ proj) @ (low @ proj).T, scores_full, atol=1e-9)
    assert recall(loki_mask(q, low, pca_basis(low), 3, 6), oracle_low) == 1.0
    assert recall(loki_mask(q, k, basis, 1, 6), oracle) < 1.0


def test_positive_random_features_are_unbiased_for_exp_dot():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, generator=g, dtype=torch.float64) * 0.3, torch.randn(4, generator=g, dtype=torch.float64) * 0.3
    w = torch.randn(4, 200_000, generator=g, dtype=torch.float64)
    est = positive_random_features(x[None], w) @ positive_random_features(y[None], w).T
    assert float(est) == pytest.approx(float(torch.exp(x @ y)), rel=0.01)


def test_scatterbrain_is_exact_on_full_support_and_between_its_parts_otherwise():
    q, k, v = _qkv(n=16, d=4)
    full = torch.ones(16, 16, dtype=torch.bool)
    torch.testing.assert_close(scatterbrain_attention(q, k, v, full, 8, generator=torch.Generator().manual_seed(0)),
                               masked_attention(q, k, v, None))
    torch.testing.assert_close(scatterbrain_attention(q, k, v, causal_mask(16), 8, causal=True,
                                                      generator=torch.Generator().manual_seed(0)),
                               masked_attention(q, k, v, causal_mask(16)))
    # a local support with many features: close to exact; with few, further away
    band = (torch.arange(16)[:, None] - torch.arange(16)[None, :]).abs() <= 2
    exact = masked_attention(q, k, v, None)
    err = [float((scatterbrain_attention(q, k, v, band, m, generator=torch.Generator().manual_seed(0)) - exact)
                 .abs().mean()) for m in (4, 20_000)]
    assert err[1] < err[0] and err[1] < 0.05


def test_kmeans_routing_mask_groups_queries_with_their_own_keys():
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(4, dtype=torch.float64)[:2] * 5
    labels_q = torch.tensor([0, 1] * 6)
    labels_k = torch.tensor([1, 0] * 6)
    q = centres[labels_q] + 0.1 * torch.randn(12, 4, generator=g, dtype=torch.float64)
    k = centres[labels_k] + 0.1 * torch.randn(12, 4, generator=g, dtype=torch.float64)
    mask = kmeans_routing_mask(q, k, 2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(mask, labels_q[:, None] == labels_k[None, :])
    with pytest.raises(ValueError):
        kmeans_routing_mask(q, k[:, :3], 2)


def test_bad_input():
    q, k, v = _qkv()
    with pytest.raises(ValueError):
        loki_mask(q, k, torch.eye(4), 2, 3)
    with pytest.raises(ValueError):
        recall(torch.ones(2, 2, dtype=torch.bool), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError):
        positive_random_features(q, torch.randn(3, 5))
    with pytest.raises(ValueError):
        pca_basis(torch.ones(4, dtype=torch.long))
