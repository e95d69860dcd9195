"""MRR@k and Recall@k on hand-worked rankings, and their input checks."""
import numpy as np
import pytest

from sparsity_core.retrieval import mrr_at_k, ranks, recall_at_k

# query 0 finds doc 1 at rank 2, query 1 finds doc 0 at rank 1, query 2 misses doc 4
RANKED = np.array([[3, 1, 2], [0, 5, 6], [7, 8, 9]])
RELEVANT = np.array([1, 0, 4])


def test_hand_worked():
    np.testing.assert_array_equal(ranks(RANKED, RELEVANT), [2, 1, 0])
    assert mrr_at_k(RANKED, RELEVANT, k=3) == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert mrr_at_k(RANKED, RELEVANT, k=1) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, RELEVANT, k=1) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, RELEVANT, k=2) == pytest.approx(2 / 3)
    assert recall_at_k(RANKED, RELEVANT, k=3) == pytest.approx(2 / 3)


def test_rank_ten_and_beyond():
    ranked = np.arange(12)[None, :].repeat(2, axis=0)         # docs 0..11 in order
    relevant = np.array([9, 10])                              # ranks 10 and 11
    assert mrr_at_k(ranked, relevant, k=10) == pytest.approx((1 / 10 + 0) / 2)
    assert recall_at_k(ranked, relevant, k=10) == 0.5
    assert recall_at_k(ranked, relevant, k=11) == 1.0
    assert mrr_at_k(ranked, relevant, k=12) == pytest.approx((1 / 10 + 1 / 11) / 2)


def test_first_occurrence_counts_and_bounds():
    ranked = np.array([[5, 5, 5], [1, 2, 3]])
    assert mrr_at_k(ranked, np.array([5, 1]), k=3) == 1.0
    assert recall_at_k(ranked, np.array([5, 1]), k=3) == 1.0
    assert mrr_at_k(ranked, np.array([0, 0]), k=3) == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(Q, K\)"):
        mrr_at_k(np.array([1, 2, 3]), np.array([1]), k=1)
    with pytest.raises(ValueError, match=r"\(Q, K\)"):
        recall_at_k(RANKED, np.array([1, 2]), k=1)
    with pytest.raises(ValueError, match="exceeds"):
        mrr_at_k(RANKED, RELEVANT, k=4)
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must"):
            recall_at_k(RANKED, RELEVANT, k=k)
    with pytest.raises(ValueError, match="no queries"):
        mrr_at_k(np.zeros((0, 3), dtype=int), np.zeros(0, dtype=int), k=1)
    with pytest.raises(TypeError, match="integer"):
        mrr_at_k(RANKED.astype(float), RELEVANT, k=1)
