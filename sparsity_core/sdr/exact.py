"""Exact closed forms for SDR matching, with Python integers and :class:`fractions.Fraction`.

Every function returns an exact ``int`` or ``Fraction``: call ``float(...)`` to print it.
Float sums of binomial ratios underflow below ~1e-300 and lose digits long before that
(the sympy ``evalf`` values in the reference scripts are off by up to 1e-3 relative,
see :func:`segment_union_false_match`), so nothing here sums floats.

References (keys in ``book/references.bib``):
    ahmad2015properties: Ahmad & Hawkins (2015), arXiv 1503.07469 -- E1-E4, E6, E7.
    ahmad2016how: Ahmad & Hawkins (2016), arXiv 1601.00720 -- E5, E8.
    hawkins2016why: Hawkins & Ahmad (2016), arXiv 1511.00083, Eq. 1 -- E5, E9.
    Reference implementation (cited, not copied): numenta/htmresearch
    ``projects/sdr_paper/sdr_math.ipynb``, ``sdr_math_neuron_paper.ipynb``,
    ``sdr_paper_unions.py``.

Taught in: Chapter 1, "SDR theory".
"""

from __future__ import annotations

from fractions import Fraction
from math import comb, floor
from numbers import Rational, Real

from .. import checks

__all__ = [
    "capacity",
    "identical_probability",
    "overlap_set_size",
    "false_match_probability",
    "segment_false_match",
    "set_false_positive",
    "set_false_positive_union_bound",
    "union_bit_zero_probability",
    "union_expected_size",
    "union_match_probability",
    "segment_union_false_match",
    "detection_probability",
    "check_sizes",
    "check_threshold",
    "replaced_cells",
]


def check_sizes(n: int, w: int, wname: str = "w") -> tuple[int, int]:
    """A population size and a subset size: ``(n, w)`` as ints, ``n >= 1``, ``0 <= w <= n``.

    Args:
        n: population (vector) size.
        w: ON bits of a subset of it; named ``wname`` in the error message (``"a"``, ``"s"``).

    Raises:
        TypeError: ``n`` or ``w`` not an int (NumPy ints are accepted, ``bool`` is not).
        ValueError: ``n < 1``, or ``w`` outside ``[0, n]``.
    """
    n = checks.integer(n, "n", lo=1)
    w = checks.integer(w, wname)
    if not 0 <= w <= n:
        raise ValueError(f"{wname} must satisfy 0 <= {wname} <= n (got {wname}={w}, n={n})")
    return n, w


def check_threshold(theta: int, top: int, top_name: str) -> int:
    """A match threshold ``theta`` as an int with ``0 <= theta <= top``.

    Args:
        theta: the threshold.
        top: its largest allowed value (the ``w`` or ``s`` it is compared with), named
            ``top_name`` in the error message.

    Raises:
        TypeError: ``theta`` not an int.
        ValueError: ``theta`` outside ``[0, top]``.
    """
    theta = checks.integer(theta, "theta")
    if not 0 <= theta <= top:
        raise ValueError(
            f"theta must satisfy 0 <= theta <= {top_name} (got theta={theta}, {top_name}={top})"
        )
    return theta


def _tail(n: int, k: int, draws: int, theta: int) -> Fraction:
    r"""Hypergeometric upper tail :math:`P(X \ge \theta)`, X = successes in ``draws`` from ``n``
    items of which ``k`` are successes. The shared kernel of E4, E5, E8 and E9'."""
    top = min(k, draws)
    hits = sum(comb(k, b) * comb(n - k, draws - b) for b in range(theta, top + 1))
    return Fraction(hits, comb(n, draws))


def capacity(n: int, w: int) -> int:
    r"""Number of distinct SDRs of size ``n`` with ``w`` ON bits (E1).

    .. math:: \binom{n}{w} = \frac{n!}{w!\,(n-w)!}

    Reference: ahmad2015properties ("Uniqueness and Exact Matches").
    """
    n, w = check_sizes(n, w)
    return comb(n, w)


def identical_probability(n: int, w: int) -> Fraction:
    r"""Probability that two independent random w-of-n SDRs are identical (E2).

    .. math:: P = 1 / \binom{n}{w}

    Reference: ahmad2015properties.
    """
    return Fraction(1, capacity(n, w))


def overlap_set_size(n: int, w_x: int, w: int, b: int) -> int:
    r"""Number of w-of-n vectors sharing exactly ``b`` ON bits with a fixed ``x``, ``|x| = w_x`` (E3).

    .. math:: |\Omega_x(n, w, b)| = \binom{w_x}{b}\binom{n - w_x}{w - b}

    Args:
        n: vector size.
        w_x: ON bits of the fixed vector, ``0 <= w_x <= n``.
        w: ON bits of the counted vectors, ``0 <= w <= n``.
        b: overlap, ``0 <= b <= w``; sizes with ``b > w_x`` count 0.

    Reference: ahmad2015properties ("Overlap Sets").
    """
    n, w_x = check_sizes(n, w_x, "w_x")
    n, w = check_sizes(n, w)
    b = checks.integer(b, "b", lo=0, hi=w)
    return comb(w_x, b) * comb(n - w_x, w - b)


def false_match_probability(n: int, w: int, theta: int) -> Fraction:
    r"""Probability that a random w-of-n SDR overlaps a fixed w-of-n SDR in >= theta bits (E4).

    .. math:: fp_w^n(\theta) = \sum_{b=\theta}^{w} |\Omega_x(n, w, b)| \Big/ \binom{n}{w}

    Reference: ahmad2015properties ("Inexact Matching").
    """
    n, w = check_sizes(n, w)
    theta = check_threshold(theta, w, "w")
    return _tail(n, w, w, theta)


def segment_false_match(n: int, a: int, s: int, theta: int) -> Fraction:
    r"""False-match probability of a dendritic segment with ``s`` synapses (E5).

    A random pattern of ``a`` active cells out of ``n`` activates ``>= theta`` of the
    segment's ``s`` synapses (Hawkins & Ahmad, Eq. 1):

    .. math:: P = \sum_{b=\theta}^{s} \binom{s}{b}\binom{n-s}{a-b} \Big/ \binom{n}{a}

    Args:
        n: population size, ``n >= 1``.
        a: active cells, ``0 <= a <= n``.
        s: synapses on the segment, ``0 <= s <= n``.
        theta: NMDA-spike threshold, ``0 <= theta <= s``.

    Reference: hawkins2016why (Eq. 1), ahmad2016how.
    """
    n, a = check_sizes(n, a, "a")
    n, s = check_sizes(n, s, "s")
    theta = check_threshold(theta, s, "s")
    return _tail(n, s, a, theta)


def set_false_positive(n: int, w: int, theta: int, M: int) -> Fraction:
    r"""Probability that a random query matches any of ``M`` stored SDRs (E6, exact form).

    .. math:: P = 1 - \left(1 - fp_w^n(\theta)\right)^M

    Notes:
        Exact when the M events "query matches stored vector i" are independent, which
        they are when the stored vectors are drawn independently and the query is fixed
        (given the query, each stored vector matches with probability fp independently).
        The paper states only the union bound :func:`set_false_positive_union_bound`;
        this form is ours ([C] in the targets file). ``M = 0`` gives 0.

    Reference: ahmad2015properties.
    """
    fp = false_match_probability(n, w, theta)
    M = checks.integer(M, "M", lo=0)
    return 1 - (1 - fp) ** M


def set_false_positive_union_bound(n: int, w: int, theta: int, M: int) -> Fraction:
    r"""Union bound on the set false-positive probability (E6 as printed).

    .. math:: P \le M \cdot fp_w^n(\theta)

    Notes:
        A bound, not a probability: it exceeds 1 when ``M * fp > 1`` (3.34 at n=100, w=7,
        theta=3, M=500), and is returned as is.

    Reference: ahmad2015properties; htmresearch ``projects/sdr_paper/README.md``.
    """
    fp = false_match_probability(n, w, theta)
    M = checks.integer(M, "M", lo=0)
    return M * fp


def union_bit_zero_probability(n: int, w: int, M: int) -> Fraction:
    r"""Probability that a given bit is 0 in the union of ``M`` random w-of-n SDRs (E7).

    .. math:: p_0 = (1 - w/n)^M

    Reference: ahmad2015properties; htmresearch ``sdr_paper_unions.py``.
    """
    n, w = check_sizes(n, w)
    M = checks.integer(M, "M", lo=0)
    return Fraction(n - w, n) ** M


def union_expected_size(n: int, w: int, M: int) -> Fraction:
    r"""Expected number of ON bits of the union of ``M`` random w-of-n SDRs (E7).

    .. math:: E|X| = n (1 - p_0)
    """
    return n * (1 - union_bit_zero_probability(n, w, M))


def union_match_probability(n: int, w: int, M: int) -> float:
    r"""Approximate probability that a random w-of-n SDR lies inside the union of ``M`` (E7).

    .. math:: P \approx (1 - p_0)^w

    Notes:
        An approximation: it treats the w bits of the query as independent draws of a
        union bit. The expression is **recalled** ([R] in the targets file), not verified
        against the 2015 paper; do not print it as the paper's equation. Returned as a
        float because it is an approximation; it underflows to 0.0 below ~1e-308.

    Reference: ahmad2015properties (recalled).
    """
    return float((1 - union_bit_zero_probability(n, w, M)) ** w)


def segment_union_false_match(n: int, a: int, s: int, theta: int, M: int) -> tuple[Fraction, int]:
    r"""False-match probability of a segment storing the union of ``M`` patterns (E8).

    .. math::
        p_0 = (1 - s/n)^M, \quad s' = \mathrm{round}(n(1 - p_0)), \quad
        P = \text{E5}(n, a, s', \theta)

    Args:
        n, a, s, theta: as in :func:`segment_false_match` (``theta <= s``).
        M: stored patterns, ``M >= 1``.

    Returns:
        ``(P, s_prime)``: the exact probability and the rounded union size used.

    Notes:
        E8 replaces the random union size by its rounded mean (the reference script's
        choice); a Monte-Carlo union of random sets is not the same model.
        Halves round up (``floor(x + 1/2)``), as Python 2's ``round`` in the script did.
        The script's values for M >= 3 come from a sympy ``evalf`` of a sum of ratios and
        drift from the exact value (n=20000, M=3: script 7.92130752699486e-16, exact at
        the same s'=75 is 7.93027352863710e-16, 1.1e-3 relative; s'=74 would give
        6.40e-16, so rounding is not the cause). See the tests for the full list.

    Reference: ahmad2016how; htmresearch ``projects/sdr_paper/sdr_paper_unions.py``.
    """
    n, s = check_sizes(n, s, "s")
    M = checks.integer(M, "M", lo=1)
    check_sizes(n, a, "a")
    check_threshold(theta, s, "s")
    p0 = Fraction(n - s, n) ** M
    s_prime = floor(n * (1 - p0) + Fraction(1, 2))
    return segment_false_match(n, a, s_prime, theta), s_prime


def detection_probability(a: int, s: int, theta: int, noise: Real) -> Fraction:
    r"""Probability that a segment still detects its pattern after noise (E9').

    The segment's ``s`` synapses sample the ``a`` cells of its pattern; a fraction
    ``noise`` of the pattern's cells (``a * noise`` of them) is replaced by cells outside
    the pattern. The segment fires if ``>= theta`` synapses remain on active cells:

    .. math::
        P = \sum_{b=\theta}^{s} \binom{a(1-\nu)}{b}\binom{a\nu}{s-b} \Big/ \binom{a}{s}

    Args:
        a: pattern size, ``a >= 1``.
        s: synapses, ``0 <= s <= a``.
        theta: threshold, ``0 <= theta <= s``.
        noise: replaced fraction ``0 <= noise <= 1``; ``a * noise`` must be a whole number
            (a float within 1e-9 of one is accepted, e.g. 0.6 * 40).

    Notes:
        Our derivation ([C] in the targets file), not an equation of the papers, which give
        only the deterministic tolerance of ``s - theta`` changed inputs (E9).

    Reference: hawkins2016why (E9, the deterministic statement).
    """
    a = checks.integer(a, "a", lo=1)
    a, s = check_sizes(a, s, "s")
    theta = check_threshold(theta, s, "s")
    replaced = replaced_cells(a, noise)
    return _tail(a, a - replaced, s, theta)


_WHOLE_TOLERANCE = 1e-9  # slack for float noise such as 0.6 * 40 = 24.000000000000004


def replaced_cells(a: int, noise: Real) -> int:
    """Number of cells ``a * noise`` that noise replaces in a pattern of ``a`` cells (E9').

    Args:
        a: pattern size (an int, checked by the caller).
        noise: replaced fraction in ``[0, 1]``; a ``Fraction`` (or int) is used exactly, a
            float may miss a whole number by float noise (``0.6 * 40``), up to ``1e-9 * a``.

    Raises:
        TypeError: ``noise`` not a real number.
        ValueError: ``noise`` outside ``[0, 1]``, or ``a * noise`` not a whole number.
    """
    checks.fraction(noise, "noise")
    if isinstance(noise, Rational):
        count = a * Fraction(noise)
        if count.denominator != 1:
            raise ValueError(f"a * noise must be a whole number of cells (got a={a}, noise={noise})")
        return int(count)
    count = a * float(noise)
    if abs(count - round(count)) > _WHOLE_TOLERANCE * max(1, a):
        raise ValueError(f"a * noise must be a whole number of cells (got a={a}, noise={noise})")
    return round(count)
