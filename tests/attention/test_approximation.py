"""Oracle approximations of an attention matrix, LSH buckets, and the benchmark helper."""
import math

import pytest
import torch

from sparsity_core.attention.approximation import (low_rank_approximation, relative_output_error, row_entropy,
                                                    sparse_approximation, sparse_plus_low_rank)
from sparsity_core.attention import a_shape_count
from sparsity_core.attention.bench import time_block_attention
from sparsity_core.attention.estimators import lsh_buckets, lsh_mask


def _attention(n=20, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return torch.softmax(x @ x.T, dim=1), torch.randn(n, 3, generator=g, dtype=torch.float64)


def test_sparse_approximation_keeps_the_k_largest_of_each_row():
    a, _ = _attention()
    s = sparse_approximation(a, 3)
    assert torch.equal((s != 0).sum(dim=1), torch.full((20,), 3))
    for i in range(20):
        assert torch.equal(torch.sort(s[i][s[i] != 0]).values, torch.sort(a[i].topk(3).values).values)
    assert torch.equal(sparse_approximation(a, 20), a)
    assert torch.count_nonzero(sparse_approximation(a, 0)) == 0


def test_low_rank_is_exact_at_full_rank_and_optimal_in_frobenius_norm():
    a, v = _attention()
    torch.testing.assert_close(low_rank_approximation(a, 20), a)
    s = torch.linalg.svdvals(a)
    for r in (1, 4, 10):
        err = torch.linalg.norm(a - low_rank_approximation(a, r))
        torch.testing.assert_close(err, s[r:].square().sum().sqrt())       # Eckart-Young
    assert relative_output_error(a, a, v) == 0


def test_sparse_plus_low_rank_reduces_to_either_part():
    a, _ = _attention()
    torch.testing.assert_close(sparse_plus_low_rank(a, 5, 0), sparse_approximation(a, 5))
    torch.testing.assert_close(sparse_plus_low_rank(a, 0, 6), low_rank_approximation(a, 6))
    torch.testing.assert_close(sparse_plus_low_rank(a, 5, 20), a)


def test_row_entropy_closed_forms():
    uniform = torch.full((3, 8), 1 / 8, dtype=torch.float64)
    torch.testing.assert_close(row_entropy(uniform), torch.full((3,), math.log(8), dtype=torch.float64))
    onehot = torch.eye(4, dtype=torch.float64)
    torch.testing.assert_close(row_entropy(onehot), torch.zeros(4, dtype=torch.float64))


def test_lsh_antipodal_points_fall_in_opposite_buckets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=g)
    h = lsh_buckets(torch.cat([x, -x]), 8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(h[50:], (h[:50] + 4) % 8)                           # argmax([xR, -xR]) flips halves
    assert int(h.min()) >= 0 and int(h.max()) < 8
    h2 = lsh_buckets(torch.cat([x, -x]), 8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(h, h2)


def test_lsh_mask_shares_buckets_and_rounds_only_add():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 5, generator=g)
    one = lsh_mask(x, x, 6, generator=torch.Generator().manual_seed(2))
    assert bool(one.diagonal().all()) and torch.equal(one, one.T)
    two = lsh_mask(x, x, 6, rounds=2, generator=torch.Generator().manual_seed(2))
    assert bool((two | one).eq(two).all())                                 # round 1 is the same draw
    with pytest.raises(ValueError):
        lsh_buckets(x, 5)
    with pytest.raises(ValueError):
        lsh_mask(x, torch.randn(4, 3), 6)


def test_bad_inputs_are_refused():
    a, v = _attention()
    with pytest.raises(ValueError):
        sparse_approximation(a[0], 2)
    with pytest.raises(ValueError):
        low_rank_approximation(a, 21)
    with pytest.raises(ValueError):
        relative_output_error(a[:3], a, v)
    with pytest.raises(ValueError):
        relative_output_error(a, a, v[:4])


def test_block_attention_timing_reports_every_implementation():
    r = time_block_attention(96, block=16, heads=1, head_dim=8, repeat=1, compile_flex=False)
    assert set(r) == {"n", "kept", "sdpa", "gather", "flex", "sdpa fwd+bwd", "gather fwd+bwd"}
    assert all(r[k] > 0 for k in r if k not in ("n", "kept"))
    # 6 blocks, the first block and a window of 3: kept blocks from the closed form, over 21 causal blocks
    assert r["kept"] == a_shape_count(6, 1, 3) / 21


def test_peak_memory_counts_what_the_call_allocates():
    from sparsity_core.attention.bench import peak_memory_mb
    if math.isnan(peak_memory_mb(lambda: None)):
        pytest.skip("no /proc peak-memory measurement on this system")

    def allocate_64_mib():
        x = torch.ones(16 * 2 ** 20)                                  # 16 Mi floats = 64 MiB, touched
        return float(x[-1])

    assert 56 <= peak_memory_mb(allocate_64_mib) <= 80
    assert peak_memory_mb(lambda: None) < 8


def test_block_attention_memory_keys():
    r = time_block_attention(64, block=16, heads=1, head_dim=8, repeat=1, compile_flex=False, memory=True)
    names = ("sdpa", "gather", "flex", "sdpa fwd+bwd", "gather fwd+bwd")
    assert {f"{k} MiB" for k in names} <= set(r)
    assert all(r[f"{k} MiB"] >= 0 or math.isnan(r[f"{k} MiB"]) for k in names)
