"""Checks of Chapter 1's exercises (``book/01_sdr.ipynb``; see :mod:`sparsity_core.exercises`).

Checked:

* ``segment_fp_scipy(n, a, s, theta)``: a dendritic segment's false-match probability (E5)
  from scipy's hypergeometric tail, against the exact :func:`sparsity_core.sdr.segment_false_match`;
* ``smallest_theta(n, w, target)``: the smallest match threshold whose false-match
  probability (E4) is below ``target``. The package has no threshold search, so the reference
  bisects the package's exact, non-increasing :func:`sparsity_core.sdr.false_match_probability`.

Not checked: ``max_patterns`` (a search over M of :func:`~sparsity_core.sdr.segment_union_false_match`
that the package does not provide either; its solution also answers 1 when even M = 1
exceeds the limit, a convention the exercise leaves open).
"""
from __future__ import annotations

from fractions import Fraction

from .. import sdr
from .check import Case, Exercise, run_check

__all__ = ["EXERCISES", "check_segment_fp_scipy", "check_smallest_theta"]

CHAPTER = "01_sdr"


# --------------------------------------------------------------------------- segment_fp_scipy
def _segment_fp_reference(n, a, s, theta):
    return float(sdr.segment_false_match(n, a, s, theta))


def _segment_fp_cases():
    return [
        Case("the chapter's segment: n = 10 000 cells, a = 300 active, s = 24 synapses, theta = 12",
             (10_000, 300, 24, 12)),
        Case("n = 1 000, a = 40 active, s = 40 synapses, theta = 10", (1_000, 40, 40, 10)),
        Case("a small population: n = 7, a = 3, s = 4, theta = 2", (7, 3, 4, 2)),
        Case("theta = 0 (every pattern matches): n = 50, a = 5, s = 10", (50, 5, 10, 0)),
        Case("theta above the a = 5 active cells (no pattern can match): n = 50, s = 10, theta = 6",
             (50, 5, 10, 6)),
    ]


SEGMENT_FP_SCIPY = Exercise(
    name="segment_fp_scipy", chapter=CHAPTER,
    task="a segment's false-match probability from scipy.stats.hypergeom",
    reference=_segment_fp_reference, cases=_segment_fp_cases,
    # atol = 0: the probabilities go down to 1e-13, where any absolute tolerance would accept
    # a wrong tail; scipy's sf agrees with the exact fractions to ~1e-15 relative.
    rtol=1e-6, atol=0.0)


def check_segment_fp_scipy(student_fn):
    """Check ``segment_fp_scipy(n, a, s, theta)``: the probability that a random pattern of
    ``a`` active cells out of ``n`` hits at least ``theta`` of a segment's ``s`` synapses,
    the hypergeometric upper tail ``P(X >= theta)`` (a float, e.g. ``stats.hypergeom.sf``).

    Compared with the exact :func:`sparsity_core.sdr.segment_false_match` (hawkins2016why,
    Eq. 1; E5), within 1e-6 relative. Taught in Chapter 1, "SDR theory" (dendritic segments).
    """
    return run_check(SEGMENT_FP_SCIPY, student_fn)


# --------------------------------------------------------------------------- smallest_theta
def _smallest_theta_reference(n, w, target):
    """Bisection on the package's exact fp_w^n(theta), which does not increase with theta."""
    if not sdr.false_match_probability(n, w, w) < target:
        raise ValueError(f"no theta <= w = {w} has a false-match probability below {target}")
    lo, hi = -1, w                      # invariant: fp(hi) < target, and fp(lo) >= target unless lo = -1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if sdr.false_match_probability(n, w, mid) < target:
            hi = mid
        else:
            lo = mid
    return hi


def _smallest_theta_cases():
    return [
        Case("the chapter's SDRs: n = 2048, w = 40, target 1e-9 (as a Fraction)",
             (2048, 40, Fraction(1, 10**9))),
        Case("n = 1024, w = 20, target 1e-6 (a float)", (1024, 20, 1e-6)),
        Case("small SDRs: n = 40, w = 8, target 1/100", (40, 8, Fraction(1, 100))),
        Case("target = 1: theta = 0 matches always (fp = 1, not < 1), so the answer is 1; n = 64, w = 5",
             (64, 5, 1)),
        Case("a target above 1: theta = 0 already qualifies; n = 64, w = 5, target 1.5", (64, 5, 1.5)),
    ]


SMALLEST_THETA = Exercise(
    name="smallest_theta", chapter=CHAPTER,
    task="the smallest threshold with false-match probability below a target",
    reference=_smallest_theta_reference, cases=_smallest_theta_cases)


def check_smallest_theta(student_fn):
    """Check ``smallest_theta(n, w, target)``: the smallest integer ``theta`` in ``0..w`` with
    ``fp_w^n(theta) < target``, where ``fp_w^n(theta)`` is the probability that a random
    w-of-n SDR overlaps a fixed one in at least ``theta`` bits (an int).

    Compared with a bisection on the exact :func:`sparsity_core.sdr.false_match_probability`
    (ahmad2015properties, "Inexact Matching"; E4). Taught in Chapter 1, "SDR theory".
    """
    return run_check(SMALLEST_THETA, student_fn)


#: The chapter's checked exercises.
EXERCISES: tuple[Exercise, ...] = (SEGMENT_FP_SCIPY, SMALLEST_THETA)
