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

* :func:`normalized_margin`: :math:`\mu` for rows of queries and document pairs.
* :func:`gaussian_projection`: the ``(k, V)`` matrix.
* :func:`top1_fidelity`: the share of queries whose best document under the projected inner
  product is their best under the exact one.

Dimension letters: Q queries, N documents, V vocabulary (input dimension), k projection.

Taught in: Chapter 8, "Retrieval" (dense and sparse encodings, a later part).
"""
from __future__ import annotations

import numpy as np

from .. import checks

__all__ = ["normalized_margin", "gaussian_projection", "top1_fidelity"]


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
    :math:`\\mathbb{E}\\langle Ax, Ay \\rangle = \\langle x, y \\rangle`)."""
    k, dim = checks.positive_int(k, "k"), checks.positive_int(dim, "dim")
    return np.random.default_rng(seed).standard_normal((k, dim)) / np.sqrt(k)


def top1_fidelity(queries, docs, projection: np.ndarray) -> float:
    """Share of the ``(Q, V)`` queries whose top document among the ``(N, V)`` docs under
    :math:`\\langle Aq, Ad \\rangle` is their top document under :math:`\\langle q, d \\rangle`
    (ties broken by the lower document index in both)."""
    q, d = _matrix(queries, "queries"), _matrix(docs, "docs")
    a = _matrix(projection, "projection")
    if not q.shape[1] == d.shape[1] == a.shape[1]:
        raise ValueError(f"queries, docs and projection must share V (got {q.shape[1]}, {d.shape[1]}, {a.shape[1]})")
    exact = np.argmax(q @ d.T, axis=1)
    projected = np.argmax((q @ a.T) @ (d @ a.T).T, axis=1)
    return float(np.mean(exact == projected))
