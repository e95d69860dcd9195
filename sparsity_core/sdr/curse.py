r"""The index-size curse of dense low-dimensional retrieval, in closed form.

Reimers & Gurevych (2021, key ``reimers2021curse``, arXiv 2012.14210) observe that dense
retrieval degrades faster than sparse retrieval as the index grows, and faster in lower
dimension. The model below is **our derivation, not the paper's**: a query u and N
distractors drawn uniformly on the unit sphere of R^d, and one relevant item at cosine
``c`` to the query. The relevant item loses if any distractor's cosine exceeds c:

.. math:: P_{\text{win}}(c, d, N) = 1 - F_d(c)^N

where :math:`F_d` is the law of the cosine t between a fixed unit vector and a uniform
random one: :math:`(1 + t)/2 \sim \mathrm{Beta}\big(\tfrac{d-1}{2}, \tfrac{d-1}{2}\big)`
(exact; the density of t is proportional to :math:`(1-t^2)^{(d-3)/2}`), and
approximately :math:`t \sim \mathcal N(0, 1/d)` for large d.

Dimensions: d embedding size, N distractors, T trials.

Taught in: Chapter 1, "SDR theory" (SDR-5).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from .. import checks
from .simulate import MonteCarlo, count_hits

__all__ = [
    "distractor_win_probability",
    "simulate_distractor_win",
    "simulate_distractor_win_vectors",
]

APPROXIMATIONS = ("exact", "gaussian")
DEFAULT_BLOCK = 2**21  # cosines sampled per block in the streaming simulator (16 MB float64)


def distractor_win_probability(c, d: int, N, approx: str = "exact"):
    r"""Probability that at least one of N random unit distractors is closer than the relevant item.

    .. math:: P = 1 - F_d(c)^N = -\mathrm{expm1}\big(N \log1p(-S_d(c))\big)

    with :math:`S_d = 1 - F_d` the survival function, so that tiny probabilities keep
    their digits.

    Args:
        c: cosine of the relevant item to the query, scalar or array in [-1, 1].
        d: dimension, ``d >= 2``.
        N: number of distractors, int or integer array >= 0 (broadcasts against ``c``).
        approx: ``"exact"`` (Beta law of the cosine) or ``"gaussian"``
            (:math:`t \sim \mathcal N(0, 1/d)`, so :math:`F_d(c) = \Phi(c\sqrt d)`).

    Returns:
        A float for scalar inputs, else an ndarray of the broadcast shape.

    Reference: reimers2021curse (the phenomenon); the formula is ours.
    """
    d = checks.integer(d, "d", lo=2)
    if approx not in APPROXIMATIONS:
        raise ValueError(f"approx must be one of {APPROXIMATIONS} (got approx={approx!r})")
    c_arr = np.asarray(c, dtype=float)
    N_arr = np.asarray(N)
    if np.any((c_arr < -1) | (c_arr > 1)) or np.any(np.isnan(c_arr)):
        raise ValueError(f"c must satisfy -1 <= c <= 1 (got c={c})")
    if N_arr.dtype.kind not in "iu" or np.any(N_arr < 0):
        raise ValueError(f"N must be a non-negative integer or integer array (got N={N})")
    if approx == "exact":
        half = (d - 1) / 2
        sf = stats.beta.sf((1 + c_arr) / 2, half, half)
    else:
        sf = stats.norm.sf(c_arr * math.sqrt(d))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_f = np.log1p(-sf)  # -inf when F = 0
        out = -np.expm1(N_arr * log_f)
    out = np.where(N_arr == 0, 0.0, out)  # 0 * -inf: no distractor never wins
    return float(out) if out.ndim == 0 else out


def _sample_cosines(d: int, count: int, generator: torch.Generator) -> torch.Tensor:
    r"""Cosines of ``count`` uniform unit vectors in R^d to a fixed unit vector, float64 (count,).

    Exact law without materialising vectors: :math:`t = g / \sqrt{g^2 + \chi^2_{d-1}}` with
    :math:`g \sim \mathcal N(0,1)` and :math:`\chi^2_{d-1} = 2\,\Gamma\big(\tfrac{d-1}{2}\big)`.

    Notes:
        The Gamma variates come from ``torch._standard_gamma``, the ATen sampler behind
        ``torch.distributions.Gamma``; unlike the distribution's ``sample`` it accepts an
        explicit generator. A Kolmogorov-Smirnov test against the Beta law guards it.
    """
    g = torch.randn(count, generator=generator, dtype=torch.float64)
    alpha = torch.full((count,), (d - 1) / 2, dtype=torch.float64)
    chi2 = 2 * torch._standard_gamma(alpha, generator=generator)
    return g / torch.sqrt(g * g + chi2)


def simulate_distractor_win(c: float, d: int, N: int, trials: int, generator: torch.Generator, *,
                            block: int = DEFAULT_BLOCK, progress: bool = False) -> MonteCarlo:
    """Monte-Carlo of :func:`distractor_win_probability` from exact cosine samples.

    Each trial draws N distractor cosines and hits if their maximum exceeds ``c``. Cosines
    are streamed in blocks of about ``block`` values (T_chunk trials x N_chunk
    distractors), keeping only the running maximum per trial.

    Args:
        c: cosine of the relevant item, in [-1, 1].
        d: dimension ``d >= 2``.
        N: distractors ``N >= 0``.
        trials: number of trials T.
        generator: source of randomness.
    """
    c = checks.real(c, "c", lo=-1.0, hi=1.0)
    d = checks.integer(d, "d", lo=2)
    N = checks.integer(N, "N", lo=0)
    block = checks.integer(block, "block", lo=1)
    n_chunk = max(1, min(N, block))
    t_chunk = max(1, block // n_chunk)

    def hits_in(rows: int) -> torch.Tensor:
        best = torch.full((rows,), -math.inf, dtype=torch.float64)
        for start in range(0, N, n_chunk):
            cols = min(n_chunk, N - start)
            cos = _sample_cosines(d, rows * cols, generator).view(rows, cols)
            best = torch.maximum(best, cos.amax(1))
        return best > c

    return count_hits(trials, t_chunk, progress, "distractors", hits_in)


def simulate_distractor_win_vectors(c: float, d: int, N: int, trials: int,
                                    generator: torch.Generator, *, chunk: int = 64) -> MonteCarlo:
    """Slow twin of :func:`simulate_distractor_win` that materialises the vectors.

    Per trial: a query and N distractors, each a standard Gaussian vector in R^d
    normalised to the unit sphere; hit if any distractor's cosine to the query exceeds c.
    Memory ``chunk * N * d`` floats: for small sizes only.
    """
    c = checks.real(c, "c", lo=-1.0, hi=1.0)
    d = checks.integer(d, "d", lo=2)
    N = checks.integer(N, "N", lo=1)

    def unit(*shape: int) -> torch.Tensor:
        x = torch.randn(*shape, d, generator=generator, dtype=torch.float64)
        return x / x.norm(dim=-1, keepdim=True)

    def hits_in(rows: int) -> torch.Tensor:
        query, distractors = unit(rows, 1), unit(rows, N)  # (T, 1, d), (T, N, d)
        cos = (distractors * query).sum(-1)  # (T, N)
        return cos.amax(1) > c

    return count_hits(trials, chunk, False, "vectors", hits_in)
