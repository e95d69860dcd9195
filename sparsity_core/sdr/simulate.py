"""Vectorised Monte-Carlo estimators for the SDR closed forms in :mod:`.exact`.

Each estimator takes an explicit ``torch.Generator`` and a ``trials`` count, processes the
trials in chunks of ``chunk`` rows to bound memory (about ``chunk * n`` bytes), and returns
a :class:`MonteCarlo` count. Random subsets come from Floyd's algorithm (Bentley & Floyd,
"A sample of brilliance", CACM 1987), vectorised over rows: ``w`` steps of O(rows) work
instead of sorting ``n`` random keys per row.

References: ahmad2015properties (E4, E6, E7), hawkins2016why (E5, E9), ahmad2016how (E8).

Taught in: Chapter 1, "SDR theory".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from numbers import Real

import torch
from scipy.special import ndtri
from tqdm.auto import tqdm

from .. import checks
from .exact import check_sizes, check_threshold, replaced_cells

__all__ = [
    "MonteCarlo",
    "se_band",
    "random_sdr_indices",
    "random_sdrs",
    "mc_false_match",
    "mc_set_false_positive",
    "mc_segment_false_match",
    "mc_segment_union_false_match",
    "mc_noise_detection",
    "union_sizes",
    "count_hits",
]

#: Two-sided false-alarm rate of a 3-standard-error band for one comparison (2 * (1 - Phi(3))).
SINGLE_ALPHA = 0.0026997960632601866

DEFAULT_CHUNK = 8192  # rows per chunk: 8192 * n bytes of masks, 16 MB at n = 2000


@dataclass(frozen=True)
class MonteCarlo:
    """A Monte-Carlo count of ``hits`` among ``trials`` independent Bernoulli trials."""

    hits: int
    trials: int

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ValueError(f"trials must satisfy trials >= 1 (got trials={self.trials})")
        if not 0 <= self.hits <= self.trials:
            raise ValueError(f"hits must satisfy 0 <= hits <= trials (got hits={self.hits})")

    @property
    def estimate(self) -> float:
        """Hit rate ``hits / trials``."""
        return self.hits / self.trials

    @property
    def stderr(self) -> float:
        r"""Binomial standard error :math:`\sqrt{\hat p (1-\hat p) / T}`."""
        p = self.estimate
        return math.sqrt(p * (1 - p) / self.trials)

    def within(self, p: float, k: float = 3.0) -> bool:
        r"""Whether :math:`|\hat p - p| \le k \cdot SE`.

        When the estimate is 0 or 1 its own SE is 0; the SE under the hypothesis ``p``,
        :math:`\sqrt{p(1-p)/T}`, is used instead.
        """
        se = self.stderr if self.stderr > 0 else math.sqrt(p * (1 - p) / self.trials)
        return abs(self.estimate - p) <= k * se


def se_band(m: int, alpha: float = SINGLE_ALPHA) -> float:
    r"""Standard errors k_m for m simultaneous checks at family-wise false-alarm rate alpha.

    Bonferroni: each of the m checks gets a two-sided band of
    :math:`k_m = \Phi^{-1}(1 - \alpha / (2m))` standard errors, so that the chance that a
    correct simulation fails *any* of the m checks is at most alpha. With the default
    alpha (that of a single 3-SE band) ``se_band(1) == 3.0``.

    Args:
        m: number of checks, ``m >= 1``.
        alpha: family-wise false-alarm rate in (0, 1).
    """
    m = checks.integer(m, "m", lo=1)
    checks.fraction(alpha, "alpha", closed_low=False, closed_high=False)
    return float(-ndtri(alpha / (2 * m)))


def _chunks(trials: int, chunk: int, progress: bool, desc: str) -> Iterator[int]:
    """Yield chunk sizes summing to ``trials``, with an optional tqdm bar over chunks."""
    trials = checks.integer(trials, "trials", lo=1)
    chunk = checks.integer(chunk, "chunk", lo=1)
    sizes = [min(chunk, trials - start) for start in range(0, trials, chunk)]
    yield from tqdm(sizes, desc=desc, disable=not progress, leave=False)


def count_hits(trials: int, chunk: int, progress: bool, desc: str,
               hits_in: Callable[[int], torch.Tensor]) -> MonteCarlo:
    """Run ``trials`` Monte-Carlo trials in chunks of at most ``chunk`` and count the hits.

    Args:
        trials: total trials T, ``>= 1``.
        chunk: rows per call of ``hits_in``, ``>= 1``.
        progress: show a tqdm bar over the chunks, labelled ``desc``.
        hits_in: ``hits_in(rows) -> BoolTensor (rows,)``, one entry per trial of the chunk,
            True where the trial hit; it draws from its own generator.

    Returns:
        :class:`MonteCarlo` with the summed hits and ``trials``.
    """
    hits = sum(int(hits_in(rows).sum()) for rows in _chunks(trials, chunk, progress, desc))
    return MonteCarlo(hits=hits, trials=trials)


def _floyd(count: int, n: int, k: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Floyd's algorithm on ``count`` rows of a population of n: k distinct random picks per row.

    Step j (from n - k to n - 1) draws t uniform in [0, j] and takes t, or j itself when t
    is already taken; every k-subset comes out equally likely.

    Returns:
        ``(mask, picks)``: BoolTensor (count, n) of the picks, LongTensor (count, k) of
        the picks in draw order.
    """
    mask = torch.zeros(count, n, dtype=torch.bool)
    picks = torch.empty(count, k, dtype=torch.long)
    for step, j in enumerate(range(n - k, n)):
        pick = torch.randint(0, j + 1, (count, 1), generator=generator)
        pick = torch.where(mask.gather(1, pick), j, pick)
        mask.scatter_(1, pick, True)
        picks[:, step : step + 1] = pick
    # gather/scatter on (count, 1) stay single-threaded; flat advanced indexing does not,
    # and stalls on a busy second core (a 50x slowdown measured on 2 shared cores)
    return mask, picks


def _check_count(count: int, n: int, w: int) -> tuple[int, int, int]:
    count = checks.integer(count, "count", lo=0)
    n, w = check_sizes(n, w)
    return count, n, w


def random_sdrs(count: int, n: int, w: int, generator: torch.Generator) -> torch.Tensor:
    """Uniformly random w-of-n SDRs.

    Args:
        count: number of SDRs B.
        n: vector size.
        w: ON bits per SDR, ``0 <= w <= n``.
        generator: source of randomness.

    Returns:
        BoolTensor (B, n), exactly ``w`` True per row, each w-subset equally likely.
    """
    count, n, w = _check_count(count, n, w)
    if w > n // 2:  # Floyd costs O(w) steps: draw the smaller complement instead
        return ~_floyd(count, n, n - w, generator)[0]
    return _floyd(count, n, w, generator)[0]


def random_sdr_indices(count: int, n: int, w: int, generator: torch.Generator) -> torch.Tensor:
    """ON-bit indices of uniformly random w-of-n SDRs.

    Args:
        count, n, w, generator: as in :func:`random_sdrs`.

    Returns:
        LongTensor (B, w): ``w`` distinct indices per row, **sorted ascending** (the set is
        uniformly random; the order carries no randomness, so never take a prefix of a row
        as a random sub-subset).
    """
    count, n, w = _check_count(count, n, w)
    if w > n // 2:
        return random_sdrs(count, n, w, generator).nonzero()[:, 1].view(count, w)
    return _floyd(count, n, w, generator)[1].sort(dim=1).values


def _union(count: int, n: int, w: int, M: int, generator: torch.Generator) -> torch.Tensor:
    """BoolTensor (count, n): per row, the union of M independent random w-of-n SDRs."""
    union = random_sdrs(count, n, w, generator)
    for _ in range(M - 1):
        union |= random_sdrs(count, n, w, generator)
    return union


def mc_false_match(n: int, w: int, theta: int, trials: int, generator: torch.Generator, *,
                   chunk: int = DEFAULT_CHUNK, progress: bool = False) -> MonteCarlo:
    """Monte-Carlo E4: a random w-of-n query overlaps one fixed random w-of-n SDR in >= theta bits.

    The stored SDR is drawn once per call; by symmetry every stored SDR gives the same
    probability, so the trials are i.i.d. with mean E4.
    """
    n, w = check_sizes(n, w)
    theta = check_threshold(theta, w, "w")
    stored = random_sdrs(1, n, w, generator)[0]  # (n,)
    return count_hits(trials, chunk, progress, "E4",
                      lambda rows: stored[random_sdr_indices(rows, n, w, generator)].sum(1) >= theta)


def mc_set_false_positive(n: int, w: int, theta: int, M: int, trials: int,
                          generator: torch.Generator, *, redraw_stored: bool = False,
                          chunk: int = DEFAULT_CHUNK, progress: bool = False) -> MonteCarlo:
    """Monte-Carlo E6: a random query overlaps any of M stored SDRs in >= theta bits.

    Overlaps are a float32 matmul of 0/1 matrices, (B, n) @ (n, M); counts <= n < 2**24
    are exact in float32.

    Args:
        redraw_stored: draw a fresh set of M stored SDRs for every chunk instead of once
            per call.

    Notes:
        With one stored set per call (the default, as in Numenta's simulation) the
        estimate is conditional on that set. Its mean over sets is exactly
        1 - (1 - fp)^M, but the spread between sets is not in the binomial SE: at n=100,
        w=7, M=500, theta=3 (p = 0.965) and 2e5 trials, twelve seeds gave z-scores with
        standard deviation 2.6, not 1 (at theta = 4 and 5: 1.0 and 0.84, harmless).
        Redrawing per chunk of 1000 trials averages the spread away (ten seeds: 0.78).
    """
    n, w = check_sizes(n, w)
    theta = check_threshold(theta, w, "w")
    M = checks.integer(M, "M", lo=1)
    stored = random_sdrs(M, n, w, generator).float().T  # (n, M)

    def hits_in(rows: int) -> torch.Tensor:
        nonlocal stored
        if redraw_stored:
            stored = random_sdrs(M, n, w, generator).float().T
        overlaps = random_sdrs(rows, n, w, generator).float() @ stored  # (B, M)
        return (overlaps >= theta).any(1)

    return count_hits(trials, chunk, progress, "E6", hits_in)


def mc_segment_false_match(n: int, a: int, s: int, theta: int, trials: int,
                           generator: torch.Generator, *, chunk: int = DEFAULT_CHUNK,
                           progress: bool = False) -> MonteCarlo:
    """Monte-Carlo E5: a random pattern of ``a`` active cells hits >= theta of ``s`` synapses.

    One of the two independent uniform sets (the synapses, a random s-subset, or the
    pattern, a random a-subset) is drawn once per call and the other afresh per trial;
    by symmetry the trials are i.i.d. with mean E5 either way.

    Notes:
        The larger set is the fixed one, because Floyd's sampler costs one step per
        element: :math:`|S \\cap P|` has the same law with the roles swapped, as in
        C(s,b) C(n-s,a-b) / C(n,a) = C(a,b) C(n-a,s-b) / C(n,s).
    """
    n, a = check_sizes(n, a, "a")
    n, s = check_sizes(n, s, "s")
    theta = check_threshold(theta, s, "s")
    fixed_size, drawn_size = max(a, s), min(a, s)
    fixed = random_sdrs(1, n, fixed_size, generator)[0]  # (n,)
    return count_hits(trials, chunk, progress, "E5",
                      lambda rows: fixed[random_sdr_indices(rows, n, drawn_size, generator)].sum(1)
                      >= theta)


def mc_segment_union_false_match(n: int, a: int, s: int, theta: int, M: int, trials: int,
                                 generator: torch.Generator, *, chunk: int = DEFAULT_CHUNK,
                                 progress: bool = False) -> MonteCarlo:
    """Monte-Carlo of E8: a segment whose synapses are the union of M random s-subsets.

    Each trial draws a fresh union (its size is random, unlike E8's rounded mean s') and a
    random pattern of ``a`` active cells; a hit is an overlap >= theta.
    """
    n, a = check_sizes(n, a, "a")
    n, s = check_sizes(n, s, "s")
    theta = check_threshold(theta, s, "s")
    M = checks.integer(M, "M", lo=1)

    def hits_in(rows: int) -> torch.Tensor:
        segment = _union(rows, n, s, M, generator)  # (B, n)
        pattern = random_sdr_indices(rows, n, a, generator)  # (B, a)
        return segment.gather(1, pattern).sum(1) >= theta

    return count_hits(trials, chunk, progress, "E8", hits_in)


def _outside(pattern: torch.Tensor, n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """k distinct random cells per row outside ``pattern`` (LongTensor (B, a), sorted rows).

    Draws ranks r among the n - a outside cells, then maps rank r to the cell
    r + #{pattern cells p_j : p_j - j <= r} (``p_j - j`` counts outside cells below p_j).
    """
    rows, a = pattern.shape
    ranks = random_sdr_indices(rows, n - a, k, generator)  # (B, k)
    below = pattern - torch.arange(a)  # (B, a), non-decreasing
    return ranks + torch.searchsorted(below, ranks, right=True)


def mc_noise_detection(n: int, a: int, s: int, theta: int, noise: Real, trials: int,
                       generator: torch.Generator, *, chunk: int = DEFAULT_CHUNK,
                       progress: bool = False) -> MonteCarlo:
    """Monte-Carlo E9': detection of a pattern after replacing a fraction of its cells.

    Per trial: a pattern of ``a`` of ``n`` cells; ``s`` synapses on a random s-subset of
    the pattern; ``a * noise`` random pattern cells switched off and as many random cells
    outside the pattern switched on; a hit is >= theta synapses on active cells.

    Args:
        noise: replaced fraction; ``a * noise`` must be a whole number (as in
            :func:`.exact.detection_probability`) and at most ``n - a``.
    """
    n, a = check_sizes(n, a, "a")
    a = checks.integer(a, "a", lo=1)
    a, s = check_sizes(a, s, "s")
    theta = check_threshold(theta, s, "s")
    replaced = replaced_cells(a, noise)
    if replaced > n - a:
        raise ValueError(f"a * noise must be <= n - a cells (got {replaced}, n - a = {n - a})")

    def hits_in(rows: int) -> torch.Tensor:
        pattern = random_sdr_indices(rows, n, a, generator)  # (B, a)
        synapses = pattern.gather(1, random_sdr_indices(rows, a, s, generator))  # (B, s)
        active = torch.zeros(rows, n, dtype=torch.bool).scatter_(1, pattern, True)
        if replaced:
            off = pattern.gather(1, random_sdr_indices(rows, a, replaced, generator))  # (B, k)
            on = _outside(pattern, n, replaced, generator)  # (B, k)
            active.scatter_(1, off, False).scatter_(1, on, True)
        return active.gather(1, synapses).sum(1) >= theta

    return count_hits(trials, chunk, progress, "E9'", hits_in)


def union_sizes(n: int, w: int, M: int, trials: int, generator: torch.Generator, *,
                chunk: int = DEFAULT_CHUNK, progress: bool = False) -> torch.Tensor:
    """Sizes of unions of M independent random w-of-n SDRs (E7 check).

    Returns:
        LongTensor (trials,); its mean estimates E|X| = n (1 - (1 - w/n)^M).
    """
    n, w = check_sizes(n, w)
    M = checks.integer(M, "M", lo=1)
    sizes = [_union(rows, n, w, M, generator).sum(1)
             for rows in _chunks(trials, chunk, progress, "E7")]
    return torch.cat(sizes)
