"""Normalised margin by hand, the projection's scale, and top-1 fidelity at its limits."""
import numpy as np
import pytest
import scipy.sparse as sp

from sparsity_core.retrieval.margin import gaussian_projection, normalized_margin, top1_fidelity


def test_normalized_margin_by_hand():
    q = np.array([[1.0, 0.0], [3.0, 4.0]])
    gold = np.array([[1.0, 0.0], [1.0, 0.0]])
    other = np.array([[0.0, 1.0], [0.0, 0.0]])
    # row 0: <(1,0),(1,-1)> / (1 * sqrt 2); row 1: <(3,4),(1,0)> / (5 * 1)
    assert np.allclose(normalized_margin(q, gold, other), [1 / np.sqrt(2), 0.6])
    assert np.allclose(normalized_margin(sp.csr_array(q), gold, other), [1 / np.sqrt(2), 0.6])
    rng = np.random.default_rng(0)
    m = normalized_margin(rng.standard_normal((50, 7)), rng.standard_normal((50, 7)), rng.standard_normal((50, 7)))
    assert (np.abs(m) <= 1 + 1e-12).all()


def test_gaussian_projection_preserves_inner_products_on_average():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(20), rng.standard_normal(20)
    vals = np.array([(gaussian_projection(16, 20, seed=s) @ x) @ (gaussian_projection(16, 20, seed=s) @ y)
                     for s in range(600)])
    assert abs(vals.mean() - x @ y) < 4 * vals.std() / np.sqrt(len(vals))
    assert gaussian_projection(4, 3).shape == (4, 3)


def test_top1_fidelity_limits():
    rng = np.random.default_rng(2)
    q, d = rng.random((30, 12)), rng.random((40, 12))
    assert top1_fidelity(q, d, np.eye(12)) == 1.0                            # an orthogonal "projection" keeps everything
    low = np.mean([top1_fidelity(q, d, gaussian_projection(1, 12, seed=s)) for s in range(20)])
    high = np.mean([top1_fidelity(q, d, gaussian_projection(512, 12, seed=s)) for s in range(20)])
    assert low < high


def test_bad_input():
    with pytest.raises(ValueError, match="undefined"):
        normalized_margin(np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="one shape"):
        normalized_margin(np.ones((1, 2)), np.ones((2, 2)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="share V"):
        top1_fidelity(np.ones((1, 2)), np.ones((1, 3)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="finite"):
        normalized_margin(np.full((1, 2), np.inf), np.ones((1, 2)), np.zeros((1, 2)))
