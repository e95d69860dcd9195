"""All-pairs overlaps: popcount, scipy sparse and dense matmul equal a Python set intersection."""

import numpy as np
import pytest
import torch

from sparsity_core.sdr import (
    indices_to_dense,
    overlap_dense,
    overlap_popcount,
    overlap_sparse,
    pack_bits,
    random_sdr_indices,
)


def brute(a_idx, b_idx):
    sets_a = [set(r) for r in a_idx.tolist()]
    sets_b = [set(r) for r in b_idx.tolist()]
    return torch.tensor([[len(x & y) for y in sets_b] for x in sets_a], dtype=torch.long)


@pytest.mark.parametrize("n,w,Ba,Bb", [(200, 10, 7, 5), (64, 20, 9, 9), (130, 65, 4, 11), (1, 1, 2, 3)])
def test_three_methods_agree_with_sets(n, w, Ba, Bb):
    g = torch.Generator().manual_seed(n + w)
    a_idx, b_idx = random_sdr_indices(Ba, n, w, g), random_sdr_indices(Bb, n, w, g)
    a, b = indices_to_dense(a_idx, n), indices_to_dense(b_idx, n)
    expected = brute(a_idx, b_idx)
    for got in (overlap_popcount(pack_bits(a), pack_bits(b)),
                overlap_popcount(pack_bits(a), pack_bits(b), chunk=2),
                overlap_sparse(a_idx, b_idx, n),
                overlap_dense(a, b)):
        assert got.dtype == torch.int64 and got.shape == (Ba, Bb)
        assert torch.equal(got, expected)


def test_pack_bits_layout():
    x = torch.zeros(3, 130, dtype=torch.bool)
    x[0, 0] = x[1, 63] = x[2, 129] = True
    words = pack_bits(x)
    assert words.dtype == np.uint64 and words.shape == (3, 3)
    assert words[0].tolist() == [1, 0, 0]
    assert words[1].tolist() == [1 << 63, 0, 0]
    assert words[2].tolist() == [0, 0, 2]


def test_lookup_table_fallback(monkeypatch):
    g = torch.Generator().manual_seed(0)
    a = pack_bits(indices_to_dense(random_sdr_indices(6, 300, 40, g), 300))
    b = pack_bits(indices_to_dense(random_sdr_indices(4, 300, 40, g), 300))
    fast = overlap_popcount(a, b)
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert torch.equal(overlap_popcount(a, b), fast)


def test_mixed_sizes_and_int32_indices():
    a_idx = torch.tensor([[0, 5, 9]], dtype=torch.int32)
    b_idx = torch.tensor([[5, 9], [1, 2]], dtype=torch.int32)
    assert overlap_sparse(a_idx, b_idx, 10).tolist() == [[2, 0]]


@pytest.mark.parametrize("call,error,match", [
    (lambda: pack_bits(torch.zeros(2, 8)), ValueError, "x must be a 2-D bool"),
    (lambda: pack_bits(np.zeros((2, 8), bool)), TypeError, "x must be a torch.Tensor"),
    (lambda: overlap_dense(torch.zeros(2, 8, dtype=torch.bool), torch.zeros(2, 9, dtype=torch.bool)),
     ValueError, "same n"),
    (lambda: overlap_dense(torch.zeros(8, dtype=torch.bool), torch.zeros(2, 8, dtype=torch.bool)),
     ValueError, "a must be a 2-D bool"),
    (lambda: overlap_popcount(np.zeros((2, 1), np.uint64), np.zeros((2, 2), np.uint64)),
     ValueError, "same words"),
    (lambda: overlap_popcount(np.zeros((2, 1), np.uint8), np.zeros((2, 1), np.uint64)),
     ValueError, "a_packed"),
    (lambda: overlap_sparse(torch.tensor([[0, 10]]), torch.tensor([[1, 2]]), 10), ValueError, "a_idx"),
    (lambda: overlap_sparse(torch.tensor([[1, 2]]), torch.tensor([[3, 3]]), 10), ValueError, "b_idx rows must hold distinct"),
    (lambda: overlap_sparse(torch.tensor([[1.0]]), torch.tensor([[1]]), 10), ValueError, "a_idx must be a 2-D integer"),
    (lambda: indices_to_dense(torch.tensor([[0, 1]]), 0), ValueError, "n must satisfy"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
