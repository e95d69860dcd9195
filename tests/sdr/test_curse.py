"""Index-size curse: closed form vs both simulators, the exact cosine law, approximations."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sparsity_core.sdr import (
    distractor_win_probability,
    simulate_distractor_win,
    simulate_distractor_win_vectors,
)
from sparsity_core.sdr.curse import _sample_cosines

SE = 3.0
KS_ALPHA = 1e-3


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("d", [2, 3, 5, 384])
def test_cosine_sampler_follows_beta_law(d):
    """(1 + t)/2 ~ Beta((d-1)/2, (d-1)/2) for the cosine t to a fixed unit vector."""
    t = _sample_cosines(d, 20_000, gen(d)).numpy()
    half = (d - 1) / 2
    assert stats.kstest((1 + t) / 2, stats.beta(half, half).cdf).pvalue > KS_ALPHA


@pytest.mark.parametrize("c,d,N,trials", [(0.2, 384, 10_000, 1000), (0.5, 16, 100, 2000),
                                          (0.3, 64, 200, 2000)])
def test_simulation_matches_formula(c, d, N, trials):
    mc = simulate_distractor_win(c, d, N, trials, gen(1), block=2**18)
    assert mc.within(distractor_win_probability(c, d, N), SE)


def test_vector_simulator_is_the_same_law():
    """The shortcut (cosines only) and the slow twin (real vectors) agree with each other and the formula."""
    c, d, N, trials = 0.5, 16, 100, 2000
    p = distractor_win_probability(c, d, N)
    fast = simulate_distractor_win(c, d, N, trials, gen(2))
    slow = simulate_distractor_win_vectors(c, d, N, trials, gen(3))
    assert fast.within(p, SE) and slow.within(p, SE)
    assert abs(fast.estimate - slow.estimate) <= SE * math.hypot(fast.stderr, slow.stderr)


def test_gaussian_approximation_converges():
    """At fixed z = c sqrt(d) the Gaussian form approaches the exact one as d grows."""
    z, N = 2.5, 100
    gaps = [abs(distractor_win_probability(z / math.sqrt(d), d, N)
                - distractor_win_probability(z / math.sqrt(d), d, N, approx="gaussian"))
            for d in (64, 1024, 16384)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-3


def test_broadcast_and_edges():
    c = np.array([0.1, 0.2, 0.3])
    N = np.array([[1], [100], [10_000]])
    p = distractor_win_probability(c, 64, N)
    assert p.shape == (3, 3)
    assert np.all(np.diff(p, axis=0) >= 0) and np.all(np.diff(p, axis=1) <= 0)
    assert distractor_win_probability(0.0, 64, 1) == pytest.approx(0.5)
    assert distractor_win_probability(0.3, 64, 0) == 0.0
    assert distractor_win_probability(1.0, 8, 5) == 0.0
    assert distractor_win_probability(-1.0, 8, 5) == 1.0
    tiny = distractor_win_probability(0.9, 384, 1)  # far below float epsilon, still resolved
    assert 0 < tiny < 1e-100


@settings(max_examples=40, deadline=None)
@given(st.floats(0.01, 0.99), st.integers(2, 500), st.integers(1, 10**6))
def test_lower_dimension_more_false_positives(c, d, N):
    """For c > 0 the win probability is non-increasing in d and non-decreasing in N."""
    p = distractor_win_probability(c, d, N)
    assert 0 <= p <= 1
    assert distractor_win_probability(c, d + 1, N) <= p + 1e-12
    assert distractor_win_probability(c, d, N + 1) >= p - 1e-12


@pytest.mark.parametrize("call,error,match", [
    (lambda: distractor_win_probability(1.5, 64, 10), ValueError, "c must satisfy"),
    (lambda: distractor_win_probability(0.1, 1, 10), ValueError, "d must satisfy"),
    (lambda: distractor_win_probability(0.1, 64, -1), ValueError, "N must be"),
    (lambda: distractor_win_probability(0.1, 64, 1.5), ValueError, "N must be"),
    (lambda: distractor_win_probability(0.1, 64, 10, approx="normal"), ValueError, "approx"),
    (lambda: simulate_distractor_win(0.1, 64, -1, 10, gen(0)), ValueError, "N must satisfy"),
    (lambda: simulate_distractor_win("0.1", 64, 1, 10, gen(0)), TypeError, "c must be"),
    (lambda: simulate_distractor_win_vectors(0.1, 1, 5, 10, gen(0)), ValueError, "d must satisfy"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
