"""Monte-Carlo twins of the SDR closed forms: samplers, agreement within 3 SE, validation.

Every test seeds its own ``torch.Generator``; trial counts keep the file to a few seconds.
"""

from itertools import combinations

import pytest
import torch
from scipy import stats

from sparsity_core.sdr import (
    MonteCarlo,
    detection_probability,
    false_match_probability,
    mc_false_match,
    mc_noise_detection,
    mc_segment_false_match,
    mc_segment_union_false_match,
    mc_set_false_positive,
    random_sdr_indices,
    random_sdrs,
    segment_false_match,
    segment_union_false_match,
    set_false_positive,
    set_false_positive_union_bound,
    union_expected_size,
    union_sizes,
)
from sparsity_core import sdr
from sparsity_core.sdr.simulate import _outside

SE = 3.0  # agreement band in binomial standard errors (targets file, SDR-1..SDR-4)
CHI2_ALPHA = 1e-3  # a sampler is rejected as non-uniform below this p-value


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- samplers


@pytest.mark.parametrize("n,w", [(5, 2), (5, 4), (6, 3), (4, 0), (4, 4)])
def test_random_subsets_are_uniform(n, w):
    """Every w-subset is equally likely (chi-square), both Floyd and complement branches."""
    idx = random_sdr_indices(6000, n, w, gen(n * 10 + w))
    assert idx.shape == (6000, w) and idx.dtype == torch.long
    assert bool((idx.diff(dim=1) > 0).all())  # distinct and sorted
    assert idx.numel() == 0 or (0 <= int(idx.min()) and int(idx.max()) < n)
    every = {c: i for i, c in enumerate(combinations(range(n), w))}
    counts = torch.bincount(torch.tensor([every[tuple(r)] for r in idx.tolist()]),
                            minlength=len(every))
    if len(every) > 1:
        assert stats.chisquare(counts.numpy()).pvalue > CHI2_ALPHA


def test_random_sdrs_shape_and_seed():
    x = random_sdrs(50, 300, 17, gen(0))
    assert x.shape == (50, 300) and x.dtype == torch.bool
    assert bool((x.sum(1) == 17).all())
    assert torch.equal(x, random_sdrs(50, 300, 17, gen(0)))
    assert not torch.equal(x, random_sdrs(50, 300, 17, gen(1)))
    assert random_sdrs(0, 10, 3, gen(0)).shape == (0, 10)


def test_outside_cells_are_distinct_and_outside():
    g = gen(3)
    pattern = random_sdr_indices(500, 30, 12, g)
    on = _outside(pattern, 30, 9, g)
    assert bool((on.sort(1).values.diff(dim=1) > 0).all())
    assert not bool((on[:, :, None] == pattern[:, None, :]).any())
    assert int(on.max()) < 30


# ---------------------------------------------------------------- agreement with exact forms


def test_mc_false_match_e4():  # SDR-1: E4 at n=1024, w=8
    mc = mc_false_match(1024, 8, 2, 100_000, gen(10))
    assert mc.within(float(false_match_probability(1024, 8, 2)), SE)


@pytest.mark.parametrize("theta", [3, 4, 5])
def test_mc_set_false_positive_e6(theta):
    """SDR-1: 500 stored 7-of-100 vectors, 2e5 queries; within 3 SE of 1-(1-fp)^M.

    At theta=3 one stored set per call spreads by ~2.6 binomial SE between sets (see
    ``mc_set_false_positive``), so the stored set is redrawn every 1000 queries there.
    """
    redraw = theta == 3
    mc = mc_set_false_positive(100, 7, theta, 500, 200_000, gen(20 + theta),
                               redraw_stored=redraw, chunk=1000 if redraw else 8192)
    assert mc.within(float(set_false_positive(100, 7, theta, 500)), SE)
    if theta in (3, 4):  # the estimate lies below the union bound
        assert mc.estimate < float(set_false_positive_union_bound(100, 7, theta, 500))


@pytest.mark.parametrize("n,a,s,theta", [(1000, 256, 24, 12), (200, 40, 10, 4)])
def test_mc_segment_false_match_e5(n, a, s, theta):  # SDR-3 Monte-Carlo point a=256, n=1000
    mc = mc_segment_false_match(n, a, s, theta, 20_000, gen(30))
    assert mc.within(float(segment_false_match(n, a, s, theta)), SE)


@pytest.mark.parametrize("M", [2, 3])
def test_mc_segment_union_e8(M):
    """SDR-4: random union sizes vs E8's rounded mean: max(3 SE, 10% relative)."""
    p, _ = segment_union_false_match(1000, 200, 25, 15, M)
    mc = mc_segment_union_false_match(1000, 200, 25, 15, M, 10_000, gen(40 + M))
    assert abs(mc.estimate - float(p)) <= max(SE * mc.stderr, 0.1 * float(p))


@pytest.mark.parametrize("noise", [0.0, 0.25, 0.5, 0.6])
def test_mc_noise_detection_e9(noise):  # SDR-2: n=2000, a=40, s=24, theta=12
    mc = mc_noise_detection(2000, 40, 24, 12, noise, 10_000, gen(50))
    p = float(detection_probability(40, 24, 12, noise))
    assert mc.within(p, SE)
    if noise * 40 <= 24 - 12:  # E9: at most s - theta synapses can lose their cell
        assert mc.hits == mc.trials


def test_union_sizes_e7():  # SDR-4: n=2048, w=40, measured E|X| within 1% and 3 SE
    sizes = union_sizes(2048, 40, 10, 4000, gen(60), chunk=1000).double()
    assert sizes.shape == (4000,)
    expected = float(union_expected_size(2048, 40, 10))
    assert abs(sizes.mean().item() - expected) <= 0.01 * expected
    assert abs(sizes.mean().item() - expected) <= SE * sizes.std().item() / 4000**0.5


def test_chunking_and_progress_do_not_change_the_estimator():
    small = mc_false_match(64, 8, 2, 3000, gen(7), chunk=500, progress=True)
    assert small.trials == 3000
    assert small.within(float(false_match_probability(64, 8, 2)), SE)


# ---------------------------------------------------------------- MonteCarlo


def test_monte_carlo_statistics():
    mc = MonteCarlo(hits=25, trials=100)
    assert mc.estimate == 0.25 and mc.stderr == pytest.approx((0.25 * 0.75 / 100) ** 0.5)
    assert mc.within(0.25 + 2.9 * mc.stderr) and not mc.within(0.25 + 3.1 * mc.stderr)
    zero = MonteCarlo(hits=0, trials=100)
    assert zero.stderr == 0 and zero.within(0.0) and zero.within(0.01)
    assert not zero.within(0.2)  # guard: SE under the hypothesis p
    with pytest.raises(ValueError, match="hits"):
        MonteCarlo(hits=5, trials=4)
    with pytest.raises(ValueError, match="trials"):
        MonteCarlo(hits=0, trials=0)
    with pytest.raises(AttributeError):
        mc.hits = 3  # frozen


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("call,error,match", [
    (lambda g: random_sdrs(5, 10, 11, g), ValueError, "w must satisfy"),
    (lambda g: random_sdr_indices(-1, 10, 2, g), ValueError, "count"),
    (lambda g: mc_false_match(100, 5, 6, 10, g), ValueError, "theta"),
    (lambda g: mc_false_match(100, 5, 2, 0, g), ValueError, "trials"),
    (lambda g: mc_false_match(100, 5, 2, 10, g, chunk=0), ValueError, "chunk"),
    (lambda g: mc_set_false_positive(100, 5, 2, 0, 10, g), ValueError, "M must satisfy"),
    (lambda g: mc_segment_false_match(100, 10, 5, 6, 10, g), ValueError, "theta"),
    (lambda g: mc_segment_union_false_match(100, 10, 5, 2, 2.0, 10, g), TypeError, "M"),
    (lambda g: mc_noise_detection(100, 40, 24, 12, 0.33, 10, g), ValueError, "noise"),
    (lambda g: mc_noise_detection(50, 40, 24, 12, 0.5, 10, g), ValueError, "n - a"),
    (lambda g: union_sizes(100, 5, 0, 10, g), ValueError, "M"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(gen(0))


def test_se_band_single_is_three_and_grows_with_m():
    assert sdr.se_band(1) == pytest.approx(3.0, abs=1e-12)
    bands = [sdr.se_band(m) for m in (1, 2, 5, 20, 100)]
    assert bands == sorted(bands)
    # the family-wise rate: m two-sided tails of k_m sum to the single 3-SE rate
    from scipy.stats import norm
    assert 20 * 2 * norm.sf(sdr.se_band(20)) == pytest.approx(2 * norm.sf(3.0), rel=1e-9)


def test_se_band_bad_input():
    with pytest.raises(ValueError, match="m"):
        sdr.se_band(0)
    with pytest.raises(ValueError, match="alpha"):
        sdr.se_band(3, alpha=1.5)
