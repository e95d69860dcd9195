"""Dense masked attention: the slow, obvious reference every sparse attention is checked against.

:func:`masked_attention` computes :math:`\\mathrm{softmax}(QK^\\top / \\sqrt{d} + M) V` with
:math:`M_{ij} = 0` where ``mask[i, j]`` and :math:`-\\infty` elsewhere (vaswani2017attention,
Eq. 1), in full, with one convention for the case the softmax leaves undefined: a query whose
row of ``mask`` is all False attends to nothing and outputs zeros (and passes no gradient),
where ``torch.nn.functional.scaled_dot_product_attention`` returns NaN.

Taught in: Chapter 6, "Sparse attention".
"""
from __future__ import annotations

import math

import torch

__all__ = ["masked_attention", "masked_softmax"]


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                     *, scale: float | None = None) -> torch.Tensor:
    """``(*, N, Dv)``: attention of queries ``q (*, N, D)`` over keys ``k (*, M, D)`` and values
    ``v (*, M, Dv)`` where ``mask (N, M)`` (or broadcastable to ``(*, N, M)``) is True.

    ``mask=None`` is full attention. ``scale`` defaults to ``1 / sqrt(D)``. Fully masked rows
    give zeros.
    """
    if not all(isinstance(t, torch.Tensor) for t in (q, k, v)):
        raise TypeError("q, k and v must be tensors")
    if q.dim() < 2 or k.dim() != q.dim() or v.dim() != q.dim():
        raise ValueError(f"q, k, v must have the same number of dimensions >= 2 "
                         f"(got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)})")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"q (*, N, D), k (*, M, D), v (*, M, Dv) do not match: "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    scores = (q @ k.transpose(-2, -1)) * scale                          # (*, N, M)
    if mask is None:
        return scores.softmax(dim=-1) @ v
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError("mask must be a bool tensor (True = attend)")
    try:
        mask = torch.broadcast_to(mask, scores.shape)
    except RuntimeError as err:
        raise ValueError(f"mask {tuple(mask.shape)} does not broadcast to the scores {tuple(scores.shape)}") from err
    return masked_softmax(scores, mask) @ v


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax of ``scores`` over the last axis where ``mask`` (same shape, bool) is True; rows
    with no True entry give all-zero weights and no gradient (the book's convention for a query
    that attends to nothing)."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != scores.shape:
        raise ValueError(f"mask must be a bool tensor of the scores' shape {tuple(scores.shape)}")
    any_key = mask.any(dim=-1, keepdim=True)                             # (*, N, 1)
    # a row with no key gets a harmless all-zero score row, then its weights are zeroed
    scores = scores.masked_fill(~mask & any_key, float("-inf")).masked_fill(~any_key, 0.0)
    return scores.softmax(dim=-1) * any_key
