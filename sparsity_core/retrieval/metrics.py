r"""Known-item ranking metrics: one relevant document per query.

Shapes: Q queries, K ranked results per query.

.. math::

    \mathrm{MRR@}k = \frac{1}{Q} \sum_{q} \frac{\mathbb{1}[r_q \le k]}{r_q}, \qquad
    \mathrm{Recall@}k = \frac{1}{Q} \sum_{q} \mathbb{1}[r_q \le k]

where :math:`r_q` is the 1-based rank of query q's relevant document (:math:`\infty` when
it is not in the list). With one relevant document, Recall@k is the hit rate at k.

Taught in: Chapter 7, "Retrieval".
"""
from __future__ import annotations

import numpy as np

__all__ = ["ranks", "mrr_at_k", "recall_at_k"]


def ranks(ranked: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based rank of each query's relevant document in ``ranked``, 0 when absent.

    Args:
        ranked: (Q, K) int document indices, best first.
        relevant: (Q,) int index of each query's relevant document.

    Returns:
        (Q,) int64 ranks in ``0..K``.
    """
    ranked, relevant = np.asarray(ranked), np.asarray(relevant)
    if ranked.ndim != 2 or relevant.ndim != 1 or ranked.shape[0] != relevant.shape[0]:
        raise ValueError(f"ranked must be (Q, K) and relevant (Q,) (got {ranked.shape} "
                         f"and {relevant.shape})")
    if ranked.shape[0] == 0:
        raise ValueError("no queries (Q = 0)")
    for name, a in (("ranked", ranked), ("relevant", relevant)):
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{name} must hold integer document indices (got {a.dtype})")
    hit = ranked == relevant[:, None]                         # (Q, K)
    first = hit.argmax(axis=1)
    return np.where(hit.any(axis=1), first + 1, 0).astype(np.int64)


def _cut(ranked: np.ndarray, k: int) -> np.ndarray:
    ranked = np.asarray(ranked)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an int >= 1 (got {k!r})")
    if ranked.ndim == 2 and k > ranked.shape[1]:
        raise ValueError(f"k={k} exceeds the {ranked.shape[1]} ranked results per query")
    return ranked[:, :k] if ranked.ndim == 2 else ranked


def mrr_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    """Mean reciprocal rank of the relevant document within the top ``k`` (0 beyond k).

    Args:
        ranked: (Q, K) int document indices, best first, ``K >= k``.
        relevant: (Q,) int relevant document per query.
        k: cut-off.
    """
    r = ranks(_cut(ranked, k), relevant)
    return float(np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0).mean())


def recall_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    """Fraction of queries whose relevant document is in the top ``k`` (shapes as in
    :func:`mrr_at_k`)."""
    return float((ranks(_cut(ranked, k), relevant) > 0).mean())
