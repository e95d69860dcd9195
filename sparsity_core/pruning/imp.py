"""Iterative magnitude pruning (IMP) with rewinding: the lottery-ticket procedure.

IMP (frankle2019lottery): train; prune a fraction ``p`` of the *remaining* weights by
magnitude; rewind the surviving weights to their values at initialisation
(frankle2019lottery) or at an early step ``k`` (frankle2020linear); retrain; repeat.
After ``r`` rounds a fraction :math:`(1 - p)^r` remains (:func:`imp_density`), e.g.
``p = 0.2``, 10 rounds: 10.7 %.

The pieces are separate so a chapter can recombine them: :func:`snapshot` /
:func:`rewind` (also the way to load any saved state under a mask, such as a sparse
soup), the rate arithmetic, and :func:`iterative_magnitude_pruning`, which takes the
training as a caller-supplied ``train(model) -> None`` (a closure around
``sparsity_core.training.fit`` that builds a fresh optimizer each round).

Snapshots use plain tensor names (``'fc1.weight'``, ``'fc1.bias'``) whether or not the
model is masked: a masked weight is stored as its original tensor and masks are never
part of a snapshot, so snapshots move freely between masked and unmasked copies.

Checked against facebookresearch/open_lth ``pruning/sparse_global.py`` (prune a fraction
of the remaining weights each round; not copied).

Taught in: Chapter 2, "Pruning I".
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import nn

from .. import checks
from ..masks import (SparsityReport, apply_masks, current_masks, keep_count, locate_tensor, masked_tensors,
                     sparsity_report)
from .base import Pruner
from .magnitude import MagnitudePruner

__all__ = ["snapshot", "rewind", "imp_density", "imp_rounds", "IMPRound",
           "iterative_magnitude_pruning"]

#: ``prefix.parametrizations.<tensor>.original`` -> ``prefix.<tensor>``; other
#: parametrization entries (the mask buffers) are not weights and are left out.
_ORIGINAL = re.compile(r"^(?:(?P<prefix>.*)\.)?parametrizations\.(?P<tensor>[^.]+)\.original$")


def _plain_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Live tensors of ``model`` by plain name (originals for parametrized tensors)."""
    out = {}
    for key, value in model.state_dict(keep_vars=True).items():
        match = _ORIGINAL.match(key)
        if match:
            prefix, tensor = match["prefix"], match["tensor"]
            out[f"{prefix}.{tensor}" if prefix else tensor] = value
        elif "parametrizations" not in key.split("."):
            out[key] = value
    return out


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of every parameter and buffer of ``model``, by plain name.

    Take one at initialisation (rewind to init) or from a ``fit`` callback at step ``k``
    (``lambda i, m: saved.update(snapshot(m)) if i == k - 1 else None``).
    """
    return {name: value.detach().clone() for name, value in _plain_state(model).items()}


@torch.no_grad()
def rewind(model: nn.Module, state: Mapping[str, torch.Tensor],
           masks: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """Load ``state`` (a :func:`snapshot`) into ``model`` under ``masks``.

    Afterwards every kept weight equals its value in ``state`` exactly and every masked
    weight is exactly 0 (original and effective). ``masks`` None keeps the masks the
    model already has. Build a fresh optimizer afterwards: old momentum belongs to
    other weights. Returns ``model``.

    Raises:
        ValueError: names in ``state`` and the model differ, or a shape differs.
    """
    if masks is not None:
        apply_masks(model, masks)
    live = _plain_state(model)
    missing, unexpected = sorted(set(live) - set(state)), sorted(set(state) - set(live))
    if missing or unexpected:
        raise ValueError(f"state does not match the model: missing {missing}, unexpected {unexpected}")
    for name, value in state.items():
        if value.shape != live[name].shape:
            raise ValueError(f"state[{name!r}] has shape {tuple(value.shape)}, "
                             f"the model's is {tuple(live[name].shape)}")
        live[name].copy_(value)
    for _, module, tensor, param in masked_tensors(model):
        module.parametrizations[tensor].original.masked_fill_(~param.mask, 0)
    return model


def imp_density(rounds: int, rate: float) -> float:
    """Fraction remaining after ``rounds`` rounds that each prune ``rate`` of the rest:
    :math:`(1 - p)^r` (before rounding to whole weights)."""
    rounds = checks.integer(rounds, "rounds", lo=0)
    return (1 - checks.fraction(rate, "rate", closed_low=False, closed_high=False)) ** rounds


def imp_rounds(sparsity: float, rate: float) -> int:
    """Fewest rounds reaching at least ``sparsity``:
    :math:`\\lceil \\log(1 - s) / \\log(1 - p) \\rceil`."""
    s = checks.fraction(sparsity, "sparsity", closed_high=False)
    p = checks.fraction(rate, "rate", closed_low=False, closed_high=False)
    r = max(0, math.ceil(math.log1p(-s) / math.log1p(-p) - 1e-12))
    return r


@dataclass(frozen=True)
class IMPRound:
    """One IMP round: round 0 is the dense training.

    Attributes:
        round: 0, 1, ..., rounds.
        masks: the masks trained in this round (all-True in round 0).
        report: exact counts of those masks (``report.sparsity`` overall).
    """

    round: int
    masks: dict[str, torch.Tensor]
    report: SparsityReport


def _round_targets(masks: Mapping[str, torch.Tensor], rate: float | Mapping[str, float],
                   scope: str) -> float | dict[str, float]:
    """Target sparsities that prune ``rate`` of the remaining weights, in whole weights:
    each tensor (or, in the global scope, the total) keeps ``round(remaining * (1 - p))``,
    at least 1."""
    if scope == "global":
        if isinstance(rate, Mapping):
            raise ValueError("a per-tensor rate mapping needs a pruner with scope='layer' or 'row'")
        p = checks.fraction(rate, "rate", closed_low=False, closed_high=False)
        numel = sum(m.numel() for m in masks.values())
        keep = max(1, keep_count(sum(int(m.sum()) for m in masks.values()), 1 - p))
        return 1 - keep / numel
    targets = {}
    for name, mask in masks.items():
        p = rate.get(name) if isinstance(rate, Mapping) else rate
        if p is None:
            raise ValueError(f"rate lacks a value for {name!r}")
        p = checks.fraction(p, f"rate[{name!r}]" if isinstance(rate, Mapping) else "rate",
                            closed_high=False)
        targets[name] = 1 - max(1, keep_count(int(mask.sum()), 1 - p)) / mask.numel()
    return targets


def iterative_magnitude_pruning(
        model: nn.Module, train: Callable[[nn.Module], None], *, rounds: int,
        rate: float | Mapping[str, float] = 0.2,
        rewind_to: Mapping[str, torch.Tensor] | Callable[[], Mapping[str, torch.Tensor]] | None = None,
        pruner: Pruner | None = None,
        on_round: Callable[[int, nn.Module], None] | None = None) -> list[IMPRound]:
    """Run IMP: train dense, then ``rounds`` times prune, rewind and retrain.

    Args:
        model: the network at initialisation (it is trained in place).
        train: ``train(model) -> None``, one full training run (fresh optimizer inside).
        rounds: pruning rounds after the dense run (``0``: just train).
        rate: fraction of the remaining weights pruned each round, or name -> fraction
            (frankle2019lottery prune 20 % per round, 10 % for the output layer).
        rewind_to: the state kept weights return to: None snapshots ``model`` now (rewind
            to init); a snapshot; or a zero-argument callable called after the dense
            run, which returns a snapshot the caller took at step ``k`` during it
            (rewinding, frankle2020linear).
        pruner: default ``MagnitudePruner()`` (layer-wise); pass
            ``MagnitudePruner(scope="global")`` for global IMP, or ``names=`` to choose
            the tensors.
        on_round: ``(round, model) -> None`` after each round's training (evaluate, save
            a snapshot for a soup, ...).

    Returns:
        ``rounds + 1`` :class:`IMPRound` records. The model ends trained under the last
        masks.
    """
    rounds = checks.integer(rounds, "rounds", lo=0)
    pruner = MagnitudePruner() if pruner is None else pruner
    if not isinstance(pruner, Pruner):
        raise TypeError(f"pruner must be a Pruner (got {type(pruner).__name__})")
    state = snapshot(model) if rewind_to is None else rewind_to
    names = pruner.targets(model)
    existing = current_masks(model)
    masks = {name: existing[name] if name in existing
             else torch.ones_like(getattr(*locate_tensor(model, name)), dtype=torch.bool) for name in names}
    history = []
    for r in range(rounds + 1):
        if r > 0:
            masks = pruner.compute_masks(model, _round_targets(masks, rate, pruner.scope))
            if callable(state):
                state = state()
            rewind(model, state, masks)
        train(model)
        history.append(IMPRound(r, {n: m.clone() for n, m in masks.items()}, sparsity_report(masks)))
        if on_round is not None:
            on_round(r, model)
    return history

