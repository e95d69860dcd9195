"""Attention-map statistics and selectors: exact cases and the oracle's optimality."""
import math

import pytest
import torch

from sparsity_core.attention import causal_mask, local_mask, topk_mask
from sparsity_core.attention.maps import (a_shape_estimate, block_topk_estimate, explained_rank, jaccard_expectation,
                                          mass_recall, mean_density, oracle_estimate, random_block_estimate,
                                          topk_jaccard, vertical_slash_estimate)


def _probs(H=3, n=24, seed=0, causal=True):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(H, n, n, generator=g) * 3
    if causal:
        s = s.masked_fill(~causal_mask(n), float("-inf"))
    return s, s.softmax(dim=-1)


def test_mass_recall_closed_forms():
    _, p = _probs()
    assert torch.allclose(mass_recall(p, torch.ones(24, 24, dtype=torch.bool)), torch.ones(3))
    assert torch.allclose(mass_recall(p, torch.zeros(24, 24, dtype=torch.bool)), torch.zeros(3))
    diag = torch.eye(24, dtype=torch.bool)
    assert torch.allclose(mass_recall(p, diag), p.diagonal(dim1=1, dim2=2).mean(dim=-1))


def test_oracle_covers_at_least_as_much_as_any_selector_of_k_keys():
    s, p = _probs()
    k = 5
    best = mass_recall(p, oracle_estimate(s, k, causal=True))
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        rnd = topk_mask(torch.rand(3, 24, 24, generator=g), k, causal_mask(24))
        assert bool((mass_recall(p, rnd) <= best + 1e-6).all())
    assert bool((mass_recall(p, a_shape_estimate(24, k, sink=2)) <= best + 1e-6).all())


def test_a_shape_keeps_sinks_and_a_window():
    m = a_shape_estimate(10, 4, sink=1)
    assert torch.equal(m, local_mask(10, 3) | ((torch.arange(10)[None, :] < 1) & causal_mask(10)))
    with pytest.raises(ValueError):
        a_shape_estimate(10, 4, sink=4)


def test_vertical_slash_finds_a_planted_column_and_diagonal():
    n = 32
    s = torch.full((1, n, n), -5.0)
    s[0, :, 3] = 5.0                                                    # a vertical line at key 3
    s[0, torch.arange(n), torch.arange(n)] = 5.0                        # the main diagonal
    s = s.masked_fill(~causal_mask(n), float("-inf"))
    keep = vertical_slash_estimate(s.softmax(-1), 2, probe=8)
    assert bool(keep[0, 3:, 3].all()) and bool(keep[0].diagonal().all())
    assert int(keep.sum()) == int(causal_mask(n)[:, 3].sum()) + n - 1    # column + diagonal, (3, 3) shared
    nc = vertical_slash_estimate(s.softmax(-1), 2, probe=8, causal=False, generator=torch.Generator().manual_seed(0))
    assert nc.shape == (1, n, n)


def test_block_topk_with_every_block_is_causal_attention_and_random_blocks_count():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 20, 4, generator=g), torch.randn(2, 20, 4, generator=g)
    full = block_topk_estimate(q, k, 20, block=4)
    assert torch.equal(full, causal_mask(20).expand(2, 20, 20))
    one = block_topk_estimate(q, k, 4, block=4, causal=False)           # one block of 4 keys per query block
    assert torch.equal(one.sum(dim=-1), torch.full((2, 20), 4))
    rnd = random_block_estimate(2, 20, 8, block=4, causal=False, generator=g)
    assert torch.equal(rnd.sum(dim=-1), torch.full((2, 20), 8))


def test_explained_rank_of_planted_subspaces():
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))[0]
    x = torch.randn(4000, 3, generator=g, dtype=torch.float64) @ basis[:, :3].T * torch.tensor([3.0, 2.0, 1.0]).sum()
    assert explained_rank(x, 0.9) <= 3
    iso = torch.randn(20000, 16, generator=g, dtype=torch.float64)
    assert explained_rank(iso, 0.9) in (14, 15)                          # about 0.9 * 16 = 14.4
    scaled = torch.cat([torch.full((1000, 1), 10.0), torch.zeros(1000, 1)], 1)
    scaled[::2, 0] = -10.0
    assert explained_rank(scaled, 0.9) == 1


def test_jaccard_closed_forms():
    a = torch.zeros(1, 4, 6, dtype=torch.bool)
    a[0, :, :2] = True
    b = torch.zeros(1, 4, 6, dtype=torch.bool)
    b[0, :, 1:3] = True
    assert torch.allclose(topk_jaccard(a, b), torch.tensor([1 / 3], dtype=torch.float64))
    assert torch.allclose(topk_jaccard(a, a), torch.ones(1, dtype=torch.float64))
    assert jaccard_expectation(2, 6) == pytest.approx(2 / 10)
    # the expectation is the ratio of expected sizes: check it by sampling
    g = torch.Generator().manual_seed(0)
    n, k = 50, 10
    sa = torch.rand(1, 4000, n, generator=g).argsort(-1)[..., :k]
    sb = torch.rand(1, 4000, n, generator=g).argsort(-1)[..., :k]
    ma = torch.zeros(1, 4000, n, dtype=torch.bool).scatter_(-1, sa, True)
    mb = torch.zeros(1, 4000, n, dtype=torch.bool).scatter_(-1, sb, True)
    inter = (ma & mb).sum(-1).double().mean()
    assert float(inter) == pytest.approx(k * k / n, rel=0.05)
    assert mean_density(causal_mask(6), causal=True) == 1.0


def test_bad_inputs_are_refused():
    _, p = _probs()
    with pytest.raises(ValueError):
        mass_recall(p[0], torch.ones(24, 24, dtype=torch.bool))
    with pytest.raises(TypeError):
        mass_recall(p, torch.ones(24, 24))
    with pytest.raises(ValueError):
        explained_rank(torch.randn(1, 4))
    with pytest.raises(ValueError):
        topk_jaccard(torch.ones(1, 2, 2, dtype=torch.bool), torch.ones(1, 2, 3, dtype=torch.bool))
    with pytest.raises(ValueError):
        jaccard_expectation(5, 4)
