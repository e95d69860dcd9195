"""Sparse, low-rank and sparse + low-rank approximations of an attention matrix (oracles).

Scatterbrain's starting observation (chen2021scatterbrain, Sec. 3 and Fig. 1): with the
attention matrix :math:`A = \\mathrm{softmax}(\\beta QK^\\top/\\sqrt d)`, a *sparse*
approximation (the largest entries of each row) is accurate when the softmax is peaked (low
entropy, large :math:`\\beta`), a *low-rank* one (truncated SVD) when it is flat (high entropy,
small :math:`\\beta`), and their sum beats both in between. These are the best-case
(oracle) versions, computed from the full matrix; the estimators of
:mod:`~sparsity_core.attention.estimators` (LSH buckets, Performer features, Scatterbrain)
are the ones that never form it.

Shapes: ``a (N, M)``; ``v (M, Dv)``.

Taught in: Chapter 6, "Sparse attention".
"""
from __future__ import annotations

import torch

from .. import checks
from .patterns import topk_mask

__all__ = ["sparse_approximation", "low_rank_approximation", "sparse_plus_low_rank", "relative_output_error",
           "row_entropy"]


def _matrix(a: object) -> torch.Tensor:
    if not isinstance(a, torch.Tensor) or a.dim() != 2 or not a.is_floating_point() or a.numel() == 0:
        raise ValueError("a must be a non-empty 2-D float tensor (N, M)")
    return a


def sparse_approximation(a: torch.Tensor, k: int) -> torch.Tensor:
    """``(N, M)``: ``a`` with all but the ``k`` largest entries of each row set to 0."""
    a = _matrix(a)
    k = checks.integer(k, "k", lo=0, hi=a.shape[1])
    if k == 0:
        return torch.zeros_like(a)
    return torch.where(topk_mask(a, k), a, torch.zeros_like(a))


def low_rank_approximation(a: torch.Tensor, r: int) -> torch.Tensor:
    """``(N, M)``: the best rank-``r`` approximation of ``a`` in Frobenius norm (truncated SVD,
    Eckart-Young)."""
    a = _matrix(a)
    r = checks.integer(r, "r", lo=0, hi=min(a.shape))
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    return (u[:, :r] * s[:r]) @ vh[:r]


def sparse_plus_low_rank(a: torch.Tensor, k: int, r: int) -> torch.Tensor:
    """``(N, M)``: ``S + L`` with ``S`` the top-``k`` entries per row of ``a`` and ``L`` the best
    rank-``r`` approximation of the residual ``a - S`` (the oracle form of Scatterbrain's
    estimate, which spends ``k`` entries and ``r`` features per row)."""
    s = sparse_approximation(a, k)
    return s + low_rank_approximation(a - s, r)


def relative_output_error(a_hat: torch.Tensor, a: torch.Tensor, v: torch.Tensor) -> float:
    """:math:`\\|\\hat A V - A V\\|_F / \\|A V\\|_F` (chen2021scatterbrain's error of the attention
    output)."""
    a = _matrix(a)
    if not isinstance(a_hat, torch.Tensor) or a_hat.shape != a.shape:
        raise ValueError(f"a_hat must have a's shape {tuple(a.shape)}")
    if not isinstance(v, torch.Tensor) or v.dim() != 2 or v.shape[0] != a.shape[1]:
        raise ValueError(f"v must be ({a.shape[1]}, Dv)")
    ref = a @ v
    return float(torch.linalg.norm(a_hat @ v - ref) / torch.linalg.norm(ref))


def row_entropy(a: torch.Tensor) -> torch.Tensor:
    """``(N,)``: the entropy (nats) of each row of a row-stochastic ``a``; ``log M`` for uniform rows."""
    a = _matrix(a)
    return -(a * torch.log(a.clamp_min(torch.finfo(a.dtype).tiny))).sum(dim=1)
