"""The dense gradient of masked weights, for growth criteria (RigL, sparse momentum).

With the :class:`~sparsity_core.masks.Mask` parametrization, ``module.weight`` is
:math:`W = \\mathrm{where}(M, W_\\mathrm{orig}, 0)` and the gradient reaching the stored
original is exactly zero where the mask is False, which is what keeps pruned weights at
zero. RigL grows the inactive connections of largest :math:`|\\partial L / \\partial W|`, so
it needs the gradient with respect to :math:`W` itself, at every position. Autograd computes
that tensor anyway, on the way to the original, and drops it: :class:`DenseGradients` keeps
it, with a forward hook on the ``Mask`` module that puts a tensor hook on its output. No
second backward pass, no unmasked copy of the model, no change to the parametrization;
rigl-torch instead registers a gradient hook on the plain weight that records the gradient
and then masks it (``IndexMaskHook``).

Taught in: Chapter 4, "Dynamic sparse training".
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..masks import masked_tensors

__all__ = ["DenseGradients"]


class DenseGradients:
    """Collects :math:`\\partial L / \\partial W` of every masked tensor of ``model``, dense.

    :math:`W = \\mathrm{where}(M, W_\\mathrm{orig}, 0)` is the output of the tensor's
    :class:`~sparsity_core.masks.Mask` parametrization; its gradient is what RigL calls the
    dense gradient (rigl's ``SparseRigLOptimizerBase.compute_gradients`` differentiates the
    masked weights; rigl-torch keeps ``dense_grad`` in a backward hook). Gradients add up over the backward passes since the
    last :meth:`pop` (a weight used twice, or accumulated batches), like ``.grad``; on the
    active entries they equal the original's ``.grad``.

    Args:
        model: a model masked with :func:`sparsity_core.masks.apply_masks`.
    """

    def __init__(self, model: nn.Module):
        self._grads: dict[str, torch.Tensor] = {}
        self._handles = [param.register_forward_hook(self._on_forward(name))
                         for name, _, _, param in masked_tensors(model)]

    def _on_forward(self, name: str) -> Callable:
        def hook(_module: nn.Module, _inputs: tuple, weight: torch.Tensor) -> None:
            if weight.requires_grad:
                weight.register_hook(lambda grad: self._add(name, grad))
        return hook

    def _add(self, name: str, grad: torch.Tensor) -> None:
        grad = grad.detach()
        self._grads[name] = grad if name not in self._grads else self._grads[name] + grad

    def pop(self) -> dict[str, torch.Tensor]:
        """The gradients collected since the last call (name -> tensor shaped like the
        weight; a name is missing if no backward pass reached it), and forget them."""
        grads, self._grads = self._grads, {}
        return grads

    def remove(self) -> None:
        """Remove the hooks from the model."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
