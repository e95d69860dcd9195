r"""What an SAE is judged by, each with its definition written down.

* :func:`fvu` -- fraction of variance unexplained, the one metric of reconstruction this book
  uses (gao2024scaling's "normalized MSE"; targets Sec. 0.2 (a)):
  :math:`\mathrm{FVU} = \sum_b \lVert x_b - \hat x_b\rVert^2 / \sum_b \lVert x_b - \bar x\rVert^2`,
  :math:`\bar x` the mean row of the same set. 0 is perfect; predicting the mean scores 1.
  (Not ``openai/sparse_autoencoder``'s ``normalized_mean_squared_error``, which divides each
  row by its own :math:`\lVert x_b\rVert^2`.)
* :func:`l0` -- mean number of non-zero latents per row.
* :func:`latent_frequencies`, :func:`dead_fraction` -- how often each latent fires over a set
  of rows, and the share that never fires there (the window is the set passed in).
* :func:`shrinkage` -- relative reconstruction bias :math:`\gamma = \sum\lVert\hat x\rVert^2 /
  \sum\langle\hat x, x\rangle` (rajamanoharan2024improving, Sec. 5; targets 6.2 (5)):
  :math:`\gamma < 1` means the reconstructions are systematically too short (shrinkage).
  Computed on centred data (the SAE's and the data's mean removed is the caller's choice;
  the chapter's data are mean-centred).
* :func:`mmcs` -- mean max cosine similarity: for each true feature, the best cosine with
  any decoder column, averaged (sharkey2022taking's MMCS, used by the targets for 6.2 (6)).
* :func:`frontier_at` -- a sweep's FVU at a given L0, interpolated linearly in
  :math:`\log L_0` (targets 6.2: SAEs are compared "at matched L0").
* :func:`absorption_rate` -- for hierarchical data (see :func:`.data.hierarchy_data`): the
  fraction of tokens with a parent *and* one of its children active on which the parent's
  latent stays silent while another active latent carries the parent's direction
  (chanin2024absorption's definition, on known ground truth; targets 6.5).

Taught in: Chapter 7, "Sparse autoencoders".
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["frontier_at", "fvu", "l0", "latent_frequencies", "dead_fraction", "shrinkage", "mmcs", "cosine_matrix",
           "absorption_rate"]


def _pair(x: Tensor, x_hat: Tensor) -> None:
    if not isinstance(x, Tensor) or not isinstance(x_hat, Tensor) or x.shape != x_hat.shape or x.dim() != 2:
        raise ValueError(f"x and x_hat must be (B, d) tensors of one shape (got "
                         f"{getattr(x, 'shape', None)} and {getattr(x_hat, 'shape', None)})")
    if x.shape[0] < 2:
        raise ValueError("need at least 2 rows to measure variance")


def fvu(x: Tensor, x_hat: Tensor) -> float:
    """Fraction of variance unexplained of ``x_hat`` for ``x``, both ``(B, d)``."""
    _pair(x, x_hat)
    x, x_hat = x.double(), x_hat.double()
    total = (x - x.mean(0)).pow(2).sum()
    if total == 0:
        raise ValueError("x has zero variance: FVU is undefined")
    return float((x - x_hat).pow(2).sum() / total)


def l0(f: Tensor) -> float:
    """Mean non-zeros per row of a code ``f (B, n)``."""
    if not isinstance(f, Tensor) or f.dim() != 2:
        raise ValueError("f must be a (B, n) tensor")
    return float((f != 0).sum(1).double().mean())


def latent_frequencies(f: Tensor) -> Tensor:
    """``(n,)`` share of rows of ``f (B, n)`` on which each latent is non-zero."""
    if not isinstance(f, Tensor) or f.dim() != 2 or f.shape[0] == 0:
        raise ValueError("f must be a non-empty (B, n) tensor")
    return (f != 0).double().mean(0)


def dead_fraction(f: Tensor) -> float:
    """Share of latents that never fire on the rows of ``f (B, n)`` (the window is those rows)."""
    return float((latent_frequencies(f) == 0).double().mean())


def shrinkage(x: Tensor, x_hat: Tensor) -> float:
    r""":math:`\gamma = \sum\lVert\hat x\rVert^2 / \sum\langle\hat x, x\rangle`; < 1 is shrinkage."""
    _pair(x, x_hat)
    x, x_hat = x.double(), x_hat.double()
    return float(x_hat.pow(2).sum() / (x_hat * x).sum())


def cosine_matrix(a: Tensor, b: Tensor) -> Tensor:
    """``(m, p)`` cosines between the rows of ``a (m, d)`` and ``b (p, d)``."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be (m, d) and (p, d) (got {tuple(a.shape)} and {tuple(b.shape)})")
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return a @ b.T


def mmcs(features: Tensor, W_dec: Tensor) -> float:
    """Mean over the true ``features (m, d)`` of the best cosine with a column of ``W_dec (d, n)``."""
    return float(cosine_matrix(features, W_dec.T).max(1).values.double().mean())


def frontier_at(l0s, values, at: float) -> float:
    """``values`` of a sweep (e.g. FVU) at ``L0 = at``, linear in ``log L0`` between the two
    nearest runs; NaN when ``at`` lies outside the sweep's L0 range.

    Args:
        l0s: the runs' L0 (>0), any order.
        values: the runs' values, same length.
        at: the L0 to read the frontier at.
    """
    import numpy as np

    x, y = np.log(np.asarray(l0s, dtype=float)), np.asarray(values, dtype=float)
    if x.shape != y.shape or x.size < 1 or not np.isfinite(x).all():
        raise ValueError("l0s and values must be equal-length, with every L0 > 0")
    order = np.argsort(x)
    x, y = x[order], y[order]
    t = np.log(float(at))
    if t < x[0] - 1e-12 or t > x[-1] + 1e-12:
        return float("nan")
    return float(np.interp(t, x, y))


def absorption_rate(f: Tensor, W_dec: Tensor, parents: Tensor, parent_active: Tensor,
                    child_active: Tensor, child_parent: Tensor, cos_threshold: float = 0.3) -> Tensor:
    r"""Per parent, the share of its (parent and a child active) tokens that are *absorbed*.

    For parent :math:`p`, :math:`\ell_p` is the latent whose decoder column has the largest
    cosine with :math:`p`'s direction. A token with :math:`p` active and one of :math:`p`'s
    children active is absorbed when :math:`\ell_p` does not fire and some other firing latent
    has decoder cosine > ``cos_threshold`` with :math:`p` (the child's latent has taken the
    parent's direction in). Parents with no such tokens get NaN.

    Args:
        f: ``(B, n)`` codes.
        W_dec: ``(d, n)`` decoder.
        parents: ``(P, d)`` parent directions.
        parent_active: ``(B, P)`` bool.
        child_active: ``(B, C)`` bool.
        child_parent: ``(C,)`` long, the parent of each child.
        cos_threshold: the cosine above which a latent carries the parent direction (targets: 0.3).

    Returns:
        ``(P,)`` float64 rates in [0, 1] (NaN where undefined).
    """
    B, n = f.shape
    P = parents.shape[0]
    if W_dec.shape[1] != n or parent_active.shape != (B, P) or child_active.shape[0] != B \
            or child_parent.shape != (child_active.shape[1],):
        raise ValueError("shapes must be f (B, n), W_dec (d, n), parents (P, d), parent_active (B, P), "
                         "child_active (B, C), child_parent (C,)")
    cos = cosine_matrix(parents, W_dec.T)                         # (P, n)
    best = cos.argmax(1)                                          # (P,) the parent latent l_p
    firing = f != 0
    rates = torch.full((P,), float("nan"), dtype=torch.float64)
    for p in range(P):
        kids = child_active[:, child_parent == p].any(1)
        rows = parent_active[:, p] & kids
        if not rows.any():
            continue
        carriers = (cos[p] > cos_threshold).clone()
        carriers[best[p]] = False
        absorbed = ~firing[rows, best[p]] & (firing[rows] & carriers).any(1)
        rates[p] = absorbed.double().mean()
    return rates
