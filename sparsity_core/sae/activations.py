r"""The sparsifying nonlinearities of sparse autoencoders, on pre-activations ``(B, n)``.

* :func:`topk_relu` -- Gao et al. (gao2024scaling), Sec. 2.3: keep the ``k`` largest
  pre-activations of each row, then ReLU. The reference code (``openai/sparse_autoencoder``
  ``model.py``, ``TopK``) applies the ReLU *after* the selection, so a row may end with fewer
  than ``k`` non-zeros when fewer than ``k`` pre-activations are positive; we do the same.
* :func:`batch_topk` -- Bussmann et al. (bussmann2024batchtopk): keep the ``B k`` largest
  post-ReLU activations of the whole batch, so rows share one budget (the reference:
  ``saprmarks/dictionary_learning`` ``trainers/batch_top_k.py``).
* :func:`jumprelu` and :func:`heaviside_step` -- Rajamanoharan et al. (rajamanoharan2024jumping),
  Eqs. 4-11: :math:`\mathrm{JumpReLU}_\theta(\pi) = \pi\,H(\pi - \theta)` with the
  straight-through pseudo-derivatives of their Eq. 11 (rectangle kernel
  :math:`K(u) = 1\{-\tfrac12 < u < \tfrac12\}`, bandwidth :math:`\varepsilon`):

  .. math::
      \frac{\eth}{\eth\theta} \mathrm{JumpReLU}_\theta(\pi) = -\frac{\theta}{\varepsilon}
      K\!\left(\frac{\pi - \theta}{\varepsilon}\right), \qquad
      \frac{\eth}{\eth\theta} H(\pi - \theta) = -\frac{1}{\varepsilon}
      K\!\left(\frac{\pi - \theta}{\varepsilon}\right),

  :math:`\partial/\partial\pi` of JumpReLU is :math:`H(\pi-\theta)` and of the step is 0 (the
  L0 penalty trains only the thresholds). The step's pseudo-derivative is the exact derivative
  of the kernel-smoothed step :math:`H_\varepsilon(u) = \mathrm{clamp}(u/\varepsilon + \tfrac12,
  0, 1)`, which is what the tests check by finite differences.

Reference code read (not copied): ``openai/sparse_autoencoder`` ``model.py``;
``saprmarks/dictionary_learning`` ``trainers/jumprelu.py``, ``trainers/batch_top_k.py``.

Taught in: Chapter 7, "Sparse autoencoders".
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import checks

__all__ = ["topk_relu", "batch_topk", "jumprelu", "heaviside_step", "check_k"]


def check_k(k: object, n_latents: int, name: str = "k") -> int:
    """``k`` as an int in ``[1, n_latents]`` (a ``TypeError`` if not an int, a ``ValueError`` if outside)."""
    return checks.integer(k, name, lo=1, hi=n_latents)


def _check_pre(pre: Tensor) -> None:
    if not isinstance(pre, Tensor) or pre.dim() != 2 or not pre.is_floating_point():
        raise TypeError("pre-activations must be a floating (B, n) tensor")


def topk_relu(pre: Tensor, k: int) -> Tensor:
    """``ReLU(TopK_k(pre))`` row by row (gao2024scaling, Sec. 2.3; their code's order).

    Args:
        pre: ``(B, n)`` pre-activations.
        k: latents kept per row, ``1 <= k <= n``.

    Returns:
        ``(B, n)``: at most ``k`` non-zeros per row, all > 0. Gradient flows only to the
        kept, positive entries.
    """
    _check_pre(pre)
    k = check_k(k, pre.shape[1])
    vals, idx = pre.topk(k, dim=1, sorted=False)
    return torch.zeros_like(pre).scatter(1, idx, torch.relu(vals))


def batch_topk(pre: Tensor, k: int) -> Tensor:
    """Keep the ``B k`` largest entries of ``ReLU(pre)`` over the whole batch (bussmann2024batchtopk).

    Args:
        pre: ``(B, n)`` pre-activations.
        k: the *mean* number of latents per row, ``1 <= k <= n``.

    Returns:
        ``(B, n)`` with exactly ``B k`` entries selected (fewer non-zeros only if fewer than
        ``B k`` pre-activations are positive).
    """
    _check_pre(pre)
    k = check_k(k, pre.shape[1])
    flat = torch.relu(pre).flatten()
    vals, idx = flat.topk(k * pre.shape[0], sorted=False)
    return torch.zeros_like(flat).scatter(0, idx, vals).view_as(pre)


def _rectangle(u: Tensor) -> Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, threshold, bandwidth):
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return pre * (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = (pre > threshold).to(pre.dtype) * grad
        grad_theta = -(threshold / eps) * _rectangle((pre - threshold) / eps) * grad
        return grad_pre, grad_theta.sum(0), None


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, threshold, bandwidth):
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_theta = -(1.0 / eps) * _rectangle((pre - threshold) / eps) * grad
        return torch.zeros_like(pre), grad_theta.sum(0), None


def _check_jump(pre: Tensor, threshold: Tensor, bandwidth: float) -> None:
    _check_pre(pre)
    if not isinstance(threshold, Tensor) or threshold.shape != pre.shape[1:]:
        raise ValueError(f"threshold must be a tensor of shape ({pre.shape[1]},) (got "
                         f"{getattr(threshold, 'shape', type(threshold).__name__)})")
    if not (isinstance(bandwidth, (int, float)) and bandwidth > 0):
        raise ValueError(f"bandwidth must be > 0 (got {bandwidth!r})")


def jumprelu(pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
    r""":math:`\pi\,H(\pi - \theta)` with Eq. 11's straight-through gradient for ``threshold``.

    Args:
        pre: ``(B, n)`` pre-activations :math:`\pi`.
        threshold: ``(n,)`` thresholds :math:`\theta > 0`.
        bandwidth: :math:`\varepsilon` of the rectangle kernel.
    """
    _check_jump(pre, threshold, bandwidth)
    return _JumpReLU.apply(pre, threshold, float(bandwidth))


def heaviside_step(pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
    r""":math:`H(\pi - \theta)` ``(B, n)``, whose gradient reaches only ``threshold`` (Eq. 11)."""
    _check_jump(pre, threshold, bandwidth)
    return _Step.apply(pre, threshold, float(bandwidth))
