r"""Fixed-length encodings lose the ranking of long documents: the normalised margin and the
fidelity of random projections (luan2021sparse).

Luan et al. relate how well a ``k``-dimensional encoding preserves a ranking to the
**normalised margin** between the gold document :math:`d_1` and a competitor :math:`d_2`,

.. math::

    \mu(q, d_1, d_2) = \frac{\langle q, d_1 - d_2 \rangle}{\lVert q \rVert\, \lVert d_1 - d_2 \rVert},

which shrinks as documents grow longer (their sparse vectors share more terms), and to the
encoding dimension: a random projection :math:`A \in \mathbb{R}^{k \times V}` with entries
:math:`\mathcal{N}(0, 1/k)` keeps the order of :math:`d_1` and :math:`d_2` with a probability
that rises with :math:`k \mu^2` (their analysis, a Johnson-Lindenstrauss argument; its constants
are not reproduced here).

For Gaussian projections the probability of that swap has an exact form (derived here, not in the
paper). Write :math:`x = d_1 - d_2` and :math:`g_i` for the rows of :math:`\sqrt{k} A`; then
:math:`k \langle Aq, Ax \rangle = \sum_{i=1}^{k} (g_i \cdot q)(g_i \cdot x)`, and each term is
:math:`\lVert q \rVert \lVert x \rVert\, XY` with :math:`(X, Y)` standard normals of
correlation :math:`\mu`. Since :math:`XY = \tfrac{1 + \mu}{2} U^2 - \tfrac{1 - \mu}{2} W^2`
with independent standard normals :math:`U = (X + Y)/\sqrt{2(1 + \mu)}` and
:math:`W = (X - Y)/\sqrt{2(1 - \mu)}`, the sum is negative exactly when a ratio of two
independent :math:`\chi^2_k` variables is below :math:`(1 - \mu)/(1 + \mu)`:

.. math:: P(\text{swap}) = F_{k,k}\!\left(\frac{1 - \mu}{1 + \mu}\right),

the CDF of Fisher's F distribution with :math:`(k, k)` degrees of freedom
(:func:`swap_probability`).

* :func:`normalized_margin`: :math:`\mu` for rows of queries and document pairs.
* :func:`gaussian_projection`: the ``(k, V)`` matrix.
* :func:`top1_fidelity`: the share of queries whose best document under the projected inner
  product is their best under the exact one (optionally among given candidates).
* :func:`swap_probability`: the exact probability that a projection reverses a pair of margin
  :math:`\mu`.

Dimension letters: Q queries, N documents, V vocabulary (input dimension), k projection.

Taught in: Chapter 8, "Retrieval" (dense and sparse encodings, a later part).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy import stats

from .. import checks

__all__ = ["normalized_margin", "gaussian_projection", "top1_fidelity", "swap_probability"]


def _matrix(x, name: str) -> np.ndarray:
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array (got shape {x.shape})")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite")
    return x


def normalized_margin(queries, gold, other) -> np.ndarray:
    """``(Q,)`` :math:`\\mu(q_i, g_i, o_i)` of ``(Q, V)`` queries, gold and competitor rows.

    Raises:
        ValueError: a query is all zeros, or a gold row equals its competitor (no margin defined).
    """
    q, g, o = _matrix(queries, "queries"), _matrix(gold, "gold"), _matrix(other, "other")
    if not q.shape == g.shape == o.shape:
        raise ValueError(f"queries, gold and other must have one shape (got {q.shape}, {g.shape}, {o.shape})")
    diff = g - o
    denom = np.linalg.norm(q, axis=1) * np.linalg.norm(diff, axis=1)
    if (denom == 0).any():
        raise ValueError("a query is zero or a gold row equals its competitor: the margin is undefined")
    return (q * diff).sum(axis=1) / denom


def gaussian_projection(k: int, dim: int, seed: int = 0) -> np.ndarray:
    """``(k, dim)`` matrix with independent :math:`\\mathcal{N}(0, 1/k)` entries (so that
    :math:`\\mathbb{E}\\langle Ax, Ay \\rangle = \\langle x, y \\rangle`).

    Draws are nested: for ``j < k`` and one seed, ``gaussian_projection(j, dim, seed)`` is
    ``gaussian_projection(k, dim, seed)[:j] * sqrt(k / j)``, so a sweep over ``k`` can project
    once at the largest ``k`` and keep leading coordinates (rankings ignore the scale)."""
    k, dim = checks.positive_int(k, "k"), checks.positive_int(dim, "dim")
    return np.random.default_rng(seed).standard_normal((k, dim)) / np.sqrt(k)


def _rows(x, name: str):
    """A non-empty finite 2-D array or scipy sparse matrix (kept sparse), as float64."""
    if sp.issparse(x):
        x = sp.csr_array(x, dtype=np.float64)
        if 0 in x.shape or not np.isfinite(x.data).all():
            raise ValueError(f"{name} must be non-empty and finite (got shape {x.shape})")
        return x
    return _matrix(x, name)


def top1_fidelity(queries, docs, projection: np.ndarray, candidates=None) -> float:
    """Share of the ``(Q, V)`` queries whose top document under :math:`\\langle Aq, Ad \\rangle`
    is their top document under :math:`\\langle q, d \\rangle`, among the ``(N, V)`` docs or,
    given ``(Q, C)`` document indices ``candidates``, among each query's own row of them (ties broken
    by the lower document index, or the earlier candidate, in both). Queries and docs may be scipy
    sparse; ``projection`` is ``(k, V)``."""
    q, d = _rows(queries, "queries"), _rows(docs, "docs")
    a = _matrix(projection, "projection")
    if not q.shape[1] == d.shape[1] == a.shape[1]:
        raise ValueError(f"queries, docs and projection must share V (got {q.shape[1]}, {d.shape[1]}, {a.shape[1]})")
    pq, pd = np.asarray(q @ a.T), np.asarray(d @ a.T)                 # (Q, k), (N, k)
    if candidates is None:
        full = q @ d.T
        exact = full.toarray() if sp.issparse(full) else np.asarray(full)
        return float(np.mean(np.argmax(exact, axis=1) == np.argmax(pq @ pd.T, axis=1)))
    cand = np.asarray(candidates)
    if cand.ndim != 2 or cand.shape[0] != q.shape[0] or cand.shape[1] == 0 or not np.issubdtype(cand.dtype, np.integer):
        raise ValueError(f"candidates must be ({q.shape[0]}, C) integer indices (got shape {cand.shape})")
    if cand.min() < 0 or cand.max() >= d.shape[0]:
        raise ValueError(f"candidates must index the {d.shape[0]} docs")
    full = q @ d.T                                                    # (Q, N) exact scores
    exact = np.take_along_axis(full.toarray() if sp.issparse(full) else np.asarray(full), cand, axis=1)   # (Q, C)
    projected = np.take_along_axis(pq @ pd.T, cand, axis=1)          # (Q, C)
    return float(np.mean(np.argmax(exact, axis=1) == np.argmax(projected, axis=1)))


def swap_probability(margin, k: int) -> np.ndarray:
    """Exact probability that a Gaussian ``(k, V)`` projection (:func:`gaussian_projection`)
    reverses the order of a pair whose normalised margin is ``margin`` (any shape, in [-1, 1]):
    :math:`F_{k,k}((1 - \\mu)/(1 + \\mu))` (module docstring). Same shape as ``margin``."""
    mu = np.asarray(margin, dtype=np.float64)
    if not np.isfinite(mu).all() or (np.abs(mu) > 1).any():
        raise ValueError("margin must be finite and in [-1, 1]")
    k = checks.positive_int(k, "k")
    with np.errstate(divide="ignore"):
        ratio = np.where(mu > -1, (1 - mu) / np.maximum(1 + mu, 1e-300), np.inf)
    return stats.f.cdf(ratio, k, k)
