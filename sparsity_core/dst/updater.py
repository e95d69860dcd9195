"""The dynamic-sparse-training skeleton: every :math:`\\Delta T` steps, drop the weakest
connections of each masked layer and grow as many new ones, at a constant count.

One update of a layer with mask :math:`M` at step :math:`t` (evci2020rigging, Algorithm 1;
the same loop as mocanu2018scalable and dettmers2019sparse):

.. math::

    k = \\operatorname{round}\\big(f(t)\\,\\lVert M\\rVert_0\\big), \\qquad
    I_\\mathrm{drop} = \\operatorname*{ArgTopK}_{i \\in M}\\big(-S^\\mathrm{drop}_i,\\ k\\big), \\qquad
    I_\\mathrm{grow} = \\operatorname*{ArgTopK}_{i \\notin M \\setminus I_\\mathrm{drop}}
        \\big(S^\\mathrm{grow}_i,\\ k\\big),

    M \\leftarrow (M \\setminus I_\\mathrm{drop}) \\cup I_\\mathrm{grow},
    \\qquad f(t) = \\tfrac{\\alpha}{2}\\big(1 + \\cos\\tfrac{\\pi t}{T_\\mathrm{end}}\\big).

The variants in :mod:`sparsity_core.dst.methods` differ only in hooks: the scores
(:meth:`MaskUpdater.drop_scores`, :meth:`MaskUpdater.grow_scores`), the per-layer grow budget
(:meth:`MaskUpdater.grow_counts`, sparse momentum) and, for constant fan-in, the selection
(:meth:`MaskUpdater.select_kept`, :meth:`MaskUpdater.select_grown`). The skeleton owns the
rest, once: the schedule, the top-k arithmetic (exact counts, ties to the lower flattened
index, as :func:`sparsity_core.masks.topk_rows`), the check that grown and kept connections
are disjoint, new connections at exactly 0, the optimizer state of dropped and new
connections reset to 0, and the record of each update.

The dense gradient :math:`\\partial L / \\partial W` that RigL grows by, at inactive
connections too, comes from :class:`~sparsity_core.dst.gradients.DenseGradients`; the
skeleton hands it to every hook.

Shapes: a masked tensor is ``(D_out, D_in)`` (Linear) or ``(C_out, C_in, *K)``
(convolution); a "row" is one output unit, ``tensor[r]``. Steps are the 0-based indices
:func:`sparsity_core.training.fit` passes to its callbacks.

Deviations from the reference code (google-research/rigl ``rigl/rigl_tf2/mask_updaters.py``
``MaskUpdater.generic_mask_update`` and ``rigl/sparse_optimizers_base.py``; read, not
copied): ``k`` rounds half up (:func:`sparsity_core.masks.keep_count`) where RigL
truncates; ties go to the lower index instead of RigL's tiny drop-score noise
(``noise_std=1e-5``); updates happen at the steps ``t = delta_t, 2 delta_t, ... < t_end``
with drop fraction :math:`f(t)` (the TF code also updates at step 0; rigl-torch counts steps
from 1), *after* that step's optimizer step, since a ``fit`` callback runs then, whereas both
references skip the weight update at a mask update (``SparseRigLOptimizerBase.apply_gradients``
runs the mask update in its place; rigl-torch's ``RigLScheduler()`` returns False). As in
the reference, a connection dropped and grown in the
same update keeps its value and optimizer state (``reinit_when_same=False``);
``regrow_dropped=False`` excludes the just-dropped connections from growth instead.

Taught in: Chapter 4, "Dynamic sparse training".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import torch
from torch import nn

from .. import checks
from ..masks import keep_count, masked_tensors, topk_rows, update_mask, zero_masked_state_
from ..schedules import cosine_drop_fraction
from .gradients import DenseGradients

__all__ = ["RIGL_ALPHA", "RIGL_DELTA_T", "UpdateSchedule", "LayerUpdate", "MaskUpdate",
           "MaskUpdater", "top_entries"]

#: Initial drop fraction alpha of the cosine schedule (evci2020rigging's experiments: 0.3).
RIGL_ALPHA = 0.3
#: Steps between mask updates (evci2020rigging's experiments: Delta T = 100).
RIGL_DELTA_T = 100


@dataclass(frozen=True)
class UpdateSchedule:
    """When masks change and by how much: every ``delta_t`` steps before ``t_end``, a drop
    fraction from :func:`sparsity_core.schedules.cosine_drop_fraction`.

    Attributes:
        t_end: first step without updates, :math:`T_\\mathrm{end} >= 1` (RigL: about 3/4 of
            training).
        delta_t: steps between updates, :math:`\\Delta T >= 1`.
        alpha: initial drop fraction in [0, 1] (RigL 0.3; sparse momentum's prune rate 0.5).
    """

    t_end: int
    delta_t: int = RIGL_DELTA_T
    alpha: float = RIGL_ALPHA

    def __post_init__(self) -> None:
        checks.integer(self.t_end, "t_end", lo=1)
        checks.integer(self.delta_t, "delta_t", lo=1)
        checks.fraction(self.alpha, "alpha")

    def is_update_step(self, step: int) -> bool:
        """``0 < step < t_end`` and ``step`` a multiple of ``delta_t``."""
        step = checks.integer(step, "step", lo=0)
        return 0 < step < self.t_end and step % self.delta_t == 0

    def drop_fraction(self, step: int) -> float:
        """:math:`f(t)` at an update step, 0 at any other step."""
        if not self.is_update_step(step):
            return 0.0
        return cosine_drop_fraction(step, alpha=self.alpha, t_end=self.t_end)


@dataclass(frozen=True)
class LayerUpdate:
    """What one update did to one masked tensor (counts of connections).

    Attributes:
        name: the tensor, e.g. ``'fc1.weight'``.
        nnz_before / nnz_after: active connections before and after.
        n_drop: the drop set, active connections not kept.
        n_grow: the grow set, connections chosen to grow.
        dropped: turned off (``n_drop - regrown``).
        grown: turned on, at value 0 (``n_grow - regrown``).
        regrown: in both sets: dropped and grown back, keeping value and optimizer state.
        active_rows: rows (output units) with at least one active connection afterwards.
    """

    name: str
    nnz_before: int
    n_drop: int
    n_grow: int
    dropped: int
    grown: int
    regrown: int
    nnz_after: int
    active_rows: int


@dataclass(frozen=True)
class MaskUpdate:
    """One update: its step, drop fraction and a :class:`LayerUpdate` per masked tensor."""

    step: int
    drop_fraction: float
    layers: tuple[LayerUpdate, ...]

    @property
    def nnz_before(self) -> int:
        return sum(layer.nnz_before for layer in self.layers)

    @property
    def nnz_after(self) -> int:
        return sum(layer.nnz_after for layer in self.layers)

    def __getitem__(self, name: str) -> LayerUpdate:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def top_entries(scores: torch.Tensor, k: int, allowed: torch.Tensor) -> torch.Tensor:
    """Bool mask of the ``k`` highest ``scores`` among the ``allowed`` entries of a tensor
    (any shape, compared as one flat vector; ties to the lower flattened index).

    Raises:
        ValueError: fewer than ``k`` allowed entries.
    """
    have = int(allowed.sum())
    if k > have:
        raise ValueError(f"cannot choose {k} entries among {have} allowed")
    return topk_rows(scores.reshape(1, -1), k, allowed=allowed.reshape(1, -1)).reshape(scores.shape)


def _check_scores(scores: object, hook: str, name: str, shape: torch.Size) -> torch.Tensor:
    if not isinstance(scores, torch.Tensor) or scores.shape != shape:
        raise ValueError(f"{hook} must return a tensor shaped like {name!r} {tuple(shape)}")
    if scores.is_floating_point() and not bool(torch.isfinite(scores).all()):
        raise ValueError(f"{hook} returned non-finite scores for {name!r}")
    return scores


def _zero_state_at(optimizer: torch.optim.Optimizer, param: torch.Tensor, where: torch.Tensor) -> None:
    """Zero every optimizer state tensor of ``param`` shaped like it, at ``where``."""
    for value in optimizer.state.get(param, {}).values():
        if isinstance(value, torch.Tensor) and value.shape == param.shape:
            value.masked_fill_(where, 0)


@dataclass(frozen=True)
class _Layer:
    mask: torch.Tensor      # bool, before the update
    weight: torch.Tensor    # effective weight, detached
    grad: torch.Tensor | None


class MaskUpdater:
    """Drop-and-grow for every masked tensor of ``model``; subclasses supply the scores.

    Use it as a :func:`~sparsity_core.training.fit` callback
    (``callbacks=[updater]``) or call :meth:`step` after each optimizer step. The state
    (masks, :attr:`history`, a variant's statistics) changes only in :meth:`step`.

    Args:
        model: masked with :func:`sparsity_core.masks.apply_masks` (every masked tensor
            takes part); its per-tensor counts are the budgets kept.
        optimizer: the optimizer that trains the masked originals.
        schedule: an :class:`UpdateSchedule`.
        generator: random source of stochastic scores (SET's random growth).
        regrow_dropped: whether a connection dropped at an update may be grown back in the
            same update (RigL's Algorithm 1 and reference code: grow among
            :math:`i \\notin M \\setminus I_\\mathrm{drop}`). False grows only among
            connections that were inactive before the update, so exactly ``k`` change.

    Attributes:
        names: the masked tensors, in model order.
        history: a :class:`MaskUpdate` per update, in order.
    """

    #: Whether the scores use the dense gradient (a variant that does sets it True, and a
    #: missing gradient at an update step is then an error).
    needs_grad: ClassVar[bool] = False

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: UpdateSchedule,
                 *, generator: torch.Generator | None = None, regrow_dropped: bool = True):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module (got {type(model).__name__})")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer (got {type(optimizer).__name__})")
        if not isinstance(schedule, UpdateSchedule):
            raise TypeError(f"schedule must be an UpdateSchedule (got {type(schedule).__name__})")
        if not isinstance(regrow_dropped, bool):
            raise TypeError(f"regrow_dropped must be a bool (got {regrow_dropped!r})")
        self._tensors = {name: (module, tensor, param) for name, module, tensor, param in masked_tensors(model)}
        if not self._tensors:
            raise ValueError("model has no masked tensors: put masks on it with "
                             "sparsity_core.masks.apply_masks first")
        trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
        untrained = [name for name in self._tensors if id(self._original(name)) not in trained]
        if untrained:
            raise ValueError(f"optimizer does not train the masked originals of {untrained}; "
                             "create it after apply_masks, over model.parameters()")
        self.model, self.optimizer, self.schedule = model, optimizer, schedule
        self.generator = checks.generator(generator)
        self.regrow_dropped = regrow_dropped
        self.names: tuple[str, ...] = tuple(self._tensors)
        self.history: list[MaskUpdate] = []
        self._grads = DenseGradients(model)

    # ------------------------------------------------------------------ hooks
    def drop_scores(self, name: str, weight: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor:
        """How much each active connection is worth keeping (higher = keep): :math:`|W|`.

        Args:
            name: the tensor, e.g. ``'fc1.weight'``.
            weight: its effective (masked) value, detached, shape of the tensor.
            grad: the dense gradient :math:`\\partial L/\\partial W` of the last step, same
                shape, or None if no backward pass reached it.
        """
        return weight.abs()

    def grow_scores(self, name: str, weight: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor:
        """How much each inactive connection is worth growing (higher = grow first).
        Arguments as :meth:`drop_scores`. Every variant implements it."""
        raise NotImplementedError(f"{type(self).__name__} must implement grow_scores()")

    def observe(self, name: str, grad: torch.Tensor | None) -> None:
        """Called at every step, before any update, with the step's dense gradient of
        ``name`` (or None), to accumulate statistics (sparse momentum's gradient momentum).
        Default: nothing."""

    def select_kept(self, name: str, mask: torch.Tensor, drop_scores: torch.Tensor,
                    grow_scores: torch.Tensor, fraction: float) -> torch.Tensor:
        """The connections kept: the ``nnz - k`` best drop scores among the active ones,
        ``k = round(fraction * nnz)`` (capped, with ``regrow_dropped=False``, by the number of
        inactive connections there are to grow). Returns a bool tensor, subset of ``mask``."""
        nnz = int(mask.sum())
        k = keep_count(nnz, fraction)
        if not self.regrow_dropped:
            k = min(k, mask.numel() - nnz)
        return top_entries(drop_scores, nnz - k, mask)

    def grow_counts(self, masks: Mapping[str, torch.Tensor],
                    kept: Mapping[str, torch.Tensor]) -> dict[str, int]:
        """How many connections each tensor grows, given its mask before the update and the
        kept connections. Default: as many as it dropped, so every count stays constant."""
        return {name: int(masks[name].sum()) - int(kept[name].sum()) for name in masks}

    def select_grown(self, name: str, mask: torch.Tensor, kept: torch.Tensor,
                     grow_scores: torch.Tensor, count: int) -> torch.Tensor:
        """The ``count`` best grow scores among the candidates: every connection not kept
        (``regrow_dropped``), or every connection inactive before the update."""
        return top_entries(grow_scores, count, ~kept if self.regrow_dropped else ~mask)

    # ------------------------------------------------------------------ driver
    def __call__(self, step: int, model: nn.Module) -> None:
        """The :func:`~sparsity_core.training.fit` callback: :meth:`step`."""
        if model is not self.model:
            raise ValueError("the updater was built for another model")
        self.step(step)

    def step(self, step: int) -> MaskUpdate | None:
        """Call after the optimizer step of ``step``: lets the variant observe the step's
        dense gradients, and at an update step changes the masks.

        Returns:
            The :class:`MaskUpdate` (also appended to :attr:`history`), or None when
            ``step`` is not an update step.
        """
        fraction = self.schedule.drop_fraction(step)
        grads = self._grads.pop()
        for name in self.names:
            self.observe(name, grads.get(name))
        if fraction == 0.0:
            return None
        layers = {name: self._layer(name, grads.get(name)) for name in self.names}
        update = MaskUpdate(int(step), fraction, self._update(layers, fraction))
        self.history.append(update)
        return update

    def remove_hooks(self) -> None:
        """Detach the dense-gradient hooks from the model (the updater is then spent)."""
        self._grads.remove()

    def _original(self, name: str) -> torch.Tensor:
        module, tensor, _ = self._tensors[name]
        return module.parametrizations[tensor].original

    @torch.no_grad()
    def _layer(self, name: str, grad: torch.Tensor | None) -> _Layer:
        module, tensor, param = self._tensors[name]
        return _Layer(param.mask.clone(), getattr(module, tensor).detach(), grad)

    @torch.no_grad()
    def _update(self, layers: Mapping[str, _Layer], fraction: float) -> tuple[LayerUpdate, ...]:
        if self.needs_grad:
            missing = [name for name, layer in layers.items() if layer.grad is None]
            if missing:
                raise ValueError(f"{type(self).__name__} needs the dense gradient of {missing}: call "
                                 "step() after the backward pass of every step (a fit callback)")
        drop, grow, kept = {}, {}, {}
        for name, layer in layers.items():
            shape = layer.mask.shape
            drop[name] = _check_scores(self.drop_scores(name, layer.weight, layer.grad),
                                       "drop_scores", name, shape)
            grow[name] = _check_scores(self.grow_scores(name, layer.weight, layer.grad),
                                       "grow_scores", name, shape)
            kept[name] = self.select_kept(name, layer.mask, drop[name], grow[name], fraction)
        counts = self.grow_counts({name: layer.mask for name, layer in layers.items()}, kept)
        records, born = [], {}
        for name, layer in layers.items():
            grown = self.select_grown(name, layer.mask, kept[name], grow[name], counts[name])
            records.append(self._record(name, layer.mask, kept[name], grown))
            new = kept[name] | grown
            born[name] = new & ~layer.mask
            update_mask(self.model, name, new)   # zeroes dropped and newly grown entries
        zero_masked_state_(self.optimizer, self.model)
        for name, where in born.items():
            _zero_state_at(self.optimizer, self._original(name), where)
        return tuple(records)

    def _record(self, name: str, mask: torch.Tensor, kept: torch.Tensor,
                grown: torch.Tensor) -> LayerUpdate:
        if bool((kept & ~mask).any()):
            raise AssertionError(f"{type(self).__name__}.select_kept kept inactive connections of {name!r}")
        if bool((kept & grown).any()):
            raise AssertionError(f"grown and kept connections of {name!r} overlap")
        dropped_set = mask & ~kept
        regrown = int((dropped_set & grown).sum())
        if regrown and not self.regrow_dropped:
            raise AssertionError(f"dropped and grown connections of {name!r} overlap")
        new = kept | grown
        n_drop, n_grow = int(dropped_set.sum()), int(grown.sum())
        return LayerUpdate(name=name, nnz_before=int(mask.sum()), n_drop=n_drop, n_grow=n_grow,
                           dropped=n_drop - regrown, grown=n_grow - regrown, regrown=regrown,
                           nnz_after=int(new.sum()),
                           active_rows=int(new.reshape(new.shape[0], -1).any(1).sum()))
