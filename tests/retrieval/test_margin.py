"""Normalised margin by hand, the projection's scale and nesting, top-1 fidelity at its limits and
over candidates, and the exact swap probability against simulation."""
import numpy as np
import pytest
import scipy.sparse as sp

from sparsity_core.retrieval.margin import gaussian_projection, normalized_margin, swap_probability, top1_fidelity


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


def test_projections_are_nested():
    big = gaussian_projection(64, 9, seed=3)
    assert np.allclose(gaussian_projection(16, 9, seed=3), big[:16] * np.sqrt(64 / 16))


def test_top1_fidelity_over_candidates_equals_a_loop_and_takes_sparse_input():
    rng = np.random.default_rng(4)
    q = rng.random((25, 30)) * (rng.random((25, 30)) < 0.3)
    d = rng.random((60, 30)) * (rng.random((60, 30)) < 0.3)
    a = gaussian_projection(5, 30, seed=1)
    cand = np.stack([rng.permutation(60)[:8] for _ in range(25)])
    hits = [cand[i][np.argmax(d[cand[i]] @ q[i])] == cand[i][np.argmax((d[cand[i]] @ a.T) @ (a @ q[i]))]
            for i in range(25)]
    assert top1_fidelity(q, d, a, candidates=cand) == pytest.approx(np.mean(hits))
    assert top1_fidelity(sp.csr_array(q), sp.csr_array(d), a, candidates=cand) == pytest.approx(np.mean(hits))
    assert top1_fidelity(sp.csr_array(q), sp.csr_array(d), a) == pytest.approx(top1_fidelity(q, d, a))
    with pytest.raises(ValueError, match="index"):
        top1_fidelity(q, d, a, candidates=cand + 60)


def test_swap_probability_limits_and_simulation():
    assert swap_probability(0.0, 7) == pytest.approx(0.5)             # no margin: a coin toss
    assert swap_probability(1.0, 3) == 0.0 and swap_probability(-1.0, 3) == 1.0
    assert swap_probability(0.2, 8) + swap_probability(-0.2, 8) == pytest.approx(1.0)
    assert swap_probability(0.2, 64) < swap_probability(0.2, 8)     # more dimensions, fewer swaps
    # simulation: q and x = d1 - d2 at margin mu, projected by 40,000 independent Gaussian matrices
    rng = np.random.default_rng(5)
    k, v = 6, 40
    q, x = rng.standard_normal(v), rng.standard_normal(v)
    mu = q @ x / (np.linalg.norm(q) * np.linalg.norm(x))
    g = rng.standard_normal((40_000, k, v))
    swaps = np.mean(np.einsum("skv,v->sk", g, q) * np.einsum("skv,v->sk", g, x) @ np.ones(k) * np.sign(mu) < 0)
    expect = swap_probability(abs(mu), k)
    assert abs(swaps - expect) < 4 * np.sqrt(expect * (1 - expect) / 40_000)


def test_bad_input():
    with pytest.raises(ValueError, match="undefined"):
        normalized_margin(np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="one shape"):
        normalized_margin(np.ones((1, 2)), np.ones((2, 2)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="share V"):
        top1_fidelity(np.ones((1, 2)), np.ones((1, 3)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="finite"):
        normalized_margin(np.full((1, 2), np.inf), np.ones((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="margin"):
        swap_probability(1.5, 4)
