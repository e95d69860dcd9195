"""The pruner skeleton: a method supplies scores, the skeleton does the rest.

A pruning method is one hook, :meth:`Pruner.score` (higher = more worth keeping). The
skeleton owns everything else, once: which tensors to prune, the top-k arithmetic
(layer-wise with a layer-wise budget, global/class-blind, or per output row), never
reviving a pruned weight, and putting the masks on the model through
``sparsity_core.masks.apply_masks``. This is the shape of google-research/rigl's
``rigl_tf2/mask_updaters.py`` (SET and RigL differ only in ``get_drop_scores`` /
``get_grow_scores``) and of torch.ao.pruning's ``BaseSparsifier.update_mask``.

:class:`GradualPruner` turns a pruner and a schedule into a ``fit`` callback
(``callbacks=[GradualPruner(...)]``): automated gradual pruning (zhu2017prune).

Taught in: Chapter 2, "Pruning I".
"""
from __future__ import annotations

from typing import Callable, Literal, Mapping, Sequence

import torch
from torch import nn

from ..allocation import layer_shapes, uniform_densities
from ..masks import (apply_masks, current_masks, global_topk_masks, keep_count, locate_tensor,
                     resolve_density, topk_mask)

__all__ = ["Pruner", "GradualPruner", "Scope"]

Scope = Literal["layer", "global", "row"]
#: ``(shapes, sparsity=...) -> {name: density}``, e.g. ``allocation.erdos_renyi_densities``.
Allocation = Callable[..., Mapping[str, float]]


class Pruner:
    """Score, select, mask. Subclasses override :meth:`score` only.

    Args:
        names: tensors to prune (``'fc1.weight'``, ...); None: every weight that
            ``sparsity_core.allocation.layer_shapes(model)`` lists (Linear and Conv weights).
        scope: how scores are compared:

            * ``"layer"``: within each tensor; tensor ``l`` keeps ``round(N_l d_l)``, with
              ``d_l`` from ``allocation`` (class-uniform pruning when it is uniform);
            * ``"global"``: one top-k over all tensors (class-blind; ``allocation`` unused);
            * ``"row"``: within each output row (``dim=-1`` of a ``(D_out, D_in)`` weight),
              every row keeping ``round(D_in d_l)`` (Wanda's comparison group).
        allocation: ``(shapes, sparsity=s) -> {name: density}`` for the layer and row
            scopes: ``uniform_densities`` (default) or ``erdos_renyi_densities``.

    Pruning only removes: only currently kept weights compete, so a tensor that already
    holds a mask keeps a subset of it, and a target below the current sparsity leaves the
    mask as it is (its layer, or the whole set in the global scope).
    """

    def __init__(self, names: Sequence[str] | None = None, *, scope: Scope = "layer",
                 allocation: Allocation = uniform_densities):
        if scope not in ("layer", "global", "row"):
            raise ValueError(f"scope must be 'layer', 'global' or 'row' (got scope={scope!r})")
        if not callable(allocation):
            raise TypeError(f"allocation must be callable (got {type(allocation).__name__})")
        self.names = None if names is None else list(names)
        self.scope = scope
        self.allocation = allocation

    def score(self, name: str, weight: torch.Tensor, module: nn.Module) -> torch.Tensor:
        """Importance of each entry of ``weight`` (higher = keep). The one method hook.

        Args:
            name: the tensor's name, e.g. ``'fc1.weight'``.
            weight: its current effective (masked) value, detached; shape of the tensor.
            module: the module that owns it (for statistics a method collected on it).

        Returns:
            Finite scores shaped like ``weight``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement score()")

    def targets(self, model: nn.Module) -> list[str]:
        """Names of the tensors this pruner prunes in ``model``."""
        if self.names is None:
            return list(layer_shapes(model))
        for name in self.names:
            locate_tensor(model, name)  # raises a clear error for a wrong name
        return list(self.names)

    def compute_masks(self, model: nn.Module,
                      sparsity: float | Mapping[str, float]) -> dict[str, torch.Tensor]:
        """The masks at ``sparsity``, without touching the model.

        Args:
            model: the model, possibly already masked.
            sparsity: overall target in [0, 1) (split over tensors by ``allocation``, or
                globally), or name -> sparsity for each target tensor (layer/row scope).
        """
        names = self.targets(model)
        existing = current_masks(model)
        weights, scores, allowed = {}, {}, {}
        for name in names:
            module, tensor = locate_tensor(model, name)
            weights[name] = getattr(module, tensor).detach()
            score = self.score(name, weights[name], module)
            if not isinstance(score, torch.Tensor) or score.shape != weights[name].shape:
                raise ValueError(f"{type(self).__name__}.score must return a tensor shaped like "
                                 f"{name!r} {tuple(weights[name].shape)}")
            scores[name] = score
            allowed[name] = existing.get(name, torch.ones_like(weights[name], dtype=torch.bool))
        if self.scope == "global":
            if isinstance(sparsity, Mapping):
                raise ValueError("a per-tensor sparsity mapping needs scope='layer' or 'row'")
            d = resolve_density(None, sparsity)
            total = sum(int(a.sum()) for a in allowed.values())
            if keep_count(sum(w.numel() for w in weights.values()), d) > total:
                return {name: allowed[name].clone() for name in names}
            return global_topk_masks(scores, d, allowed=allowed)
        densities = self._densities(weights, sparsity)
        masks = {}
        dim = -1 if self.scope == "row" else None
        for name in names:
            w, ok = weights[name], allowed[name]
            if dim is None:
                short = keep_count(w.numel(), densities[name]) > int(ok.sum())
            else:
                short = keep_count(w.shape[-1], densities[name]) > int(ok.reshape(-1, w.shape[-1]).sum(-1).min())
            if short:
                masks[name] = ok.clone()  # never revive: keep the current mask
            else:
                masks[name] = topk_mask(scores[name], densities[name], dim=dim, allowed=ok)
        return masks

    def _densities(self, weights: Mapping[str, torch.Tensor],
                   sparsity: float | Mapping[str, float]) -> dict[str, float]:
        if isinstance(sparsity, Mapping):
            missing = set(weights) - set(sparsity)
            if missing:
                raise ValueError(f"sparsity lacks values for {sorted(missing)}")
            return {name: resolve_density(None, sparsity[name]) for name in weights}
        resolve_density(None, sparsity)
        shapes = {name: w.shape for name, w in weights.items()}
        return dict(self.allocation(shapes, sparsity=sparsity))

    def prune(self, model: nn.Module, sparsity: float | Mapping[str, float], *,
              optimizer: torch.optim.Optimizer | None = None) -> dict[str, torch.Tensor]:
        """Compute the masks and put them on ``model`` (:func:`~sparsity_core.masks.apply_masks`);
        given ``optimizer``, zero its state at the masked entries. Returns the masks."""
        masks = self.compute_masks(model, sparsity)
        apply_masks(model, masks, optimizer=optimizer)
        return masks


class GradualPruner:
    """A ``fit`` callback that prunes with ``pruner`` at the schedule's update steps.

    ``GradualPruner(MagnitudePruner(), CubicSchedule(0.9, t0=200, n=20, dt=25), optimizer=opt)``
    is Zhu & Gupta's automated gradual pruning (zhu2017prune): at each update step ``t``
    the smallest-magnitude weights are masked until the sparsity is ``schedule(t)``;
    masked weights then get no updates (their gradient and optimizer state are zero).

    Args:
        pruner: any :class:`Pruner`.
        schedule: has ``schedule(step) -> sparsity`` and ``is_update_step(step) -> bool``
            (``sparsity_core.schedules.CubicSchedule`` or ``ConstantSchedule``).
        optimizer: the optimizer ``fit`` uses; its state is zeroed at newly masked entries
            so stale momentum cannot move the hidden original weights.

    Attributes:
        history: ``(step, target sparsity)`` of each pruning event.
    """

    def __init__(self, pruner: Pruner, schedule, *, optimizer: torch.optim.Optimizer | None = None):
        if not isinstance(pruner, Pruner):
            raise TypeError(f"pruner must be a Pruner (got {type(pruner).__name__})")
        if not callable(schedule) or not hasattr(schedule, "is_update_step"):
            raise TypeError("schedule must be callable and have is_update_step(step)")
        self.pruner, self.schedule, self.optimizer = pruner, schedule, optimizer
        self.history: list[tuple[int, float]] = []

    def __call__(self, step: int, model: nn.Module) -> None:
        if self.schedule.is_update_step(step):
            target = float(self.schedule(step))
            self.pruner.prune(model, target, optimizer=self.optimizer)
            self.history.append((step, target))
