"""Sparse model soups: average retrained copies that share one mask.

Copies retrained from the same pruned network with different batch orders (or
hyper-parameters) share its connectivity, so their average is exactly as sparse as
each of them and often generalises better than they do (zimmer2024sparse, Sparse
Model Soups; SWAMP makes the same move inside IMP). Averaging copies with *different*
masks would densify the network, so :func:`sparse_soup` checks the masks agree.

Load a soup with ``sparsity_core.pruning.rewind(model, soup, masks)``.

Taught in: Chapter 2, "Pruning I".
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from ..masks import as_bool_mask, current_masks
from .imp import snapshot

__all__ = ["sparse_soup"]


def _same_masks(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(torch.equal(a[n].cpu(), b[n].cpu()) for n in a)


def sparse_soup(ingredients: Sequence[nn.Module | Mapping[str, torch.Tensor]],
                masks: Mapping[str, torch.Tensor] | None = None, *,
                weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    r"""Weighted average of the ingredients' tensors, with ``masks`` re-imposed exactly.

    .. math:: \theta_\mathrm{soup} = m \odot \frac{\sum_i w_i \theta_i}{\sum_i w_i}

    Args:
        ingredients: models (masked or not) or :func:`~.imp.snapshot` state dicts with
            the same names and shapes. At least one.
        masks: name -> bool mask. None: the masks the model ingredients carry (none for
            state dicts: a plain average).
        weights: non-negative weights with a positive sum (default: uniform soup).

    Returns:
        A plain-named state dict. Floating tensors are averaged (masked entries exactly 0);
        other tensors (e.g. ``num_batches_tracked``) must be equal and are copied.

    Raises:
        ValueError: ingredients that carry different masks, or masks different from
            ``masks``; mismatched names/shapes; bad weights.
    """
    ingredients = list(ingredients)
    if not ingredients:
        raise ValueError("ingredients must hold at least one model or state dict")
    states, carried = [], []
    for i, item in enumerate(ingredients):
        if isinstance(item, nn.Module):
            states.append(snapshot(item))
            carried.append(current_masks(item))
        elif isinstance(item, Mapping):
            states.append(dict(item))
        else:
            raise TypeError(f"ingredients[{i}] must be an nn.Module or a state dict "
                            f"(got {type(item).__name__})")
    for i, found in enumerate(carried[1:], start=1):
        if not _same_masks(carried[0], found):
            raise ValueError(f"the model ingredients do not share one mask (ingredient {i} differs "
                             "from the first): a soup of different masks is not sparse")
    if masks is None:
        masks = carried[0] if carried else {}
    elif carried and carried[0] and not _same_masks({n: m != 0 for n, m in masks.items()}, carried[0]):
        raise ValueError("masks differ from the masks the model ingredients carry")
    if weights is None:
        weights = [1.0] * len(states)
    weights = [float(w) for w in weights]
    if len(weights) != len(states) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"weights must be {len(states)} non-negative numbers with a positive sum "
                         f"(got weights={weights})")
    names = list(states[0])
    for i, state in enumerate(states[1:], start=1):
        if set(state) != set(names):
            raise ValueError(f"ingredient {i} has names {sorted(set(state) ^ set(names))} "
                             "that the first does not share")
    unknown = set(masks) - set(names)
    if unknown:
        raise ValueError(f"masks name tensors the ingredients lack: {sorted(unknown)}")
    soup = {}
    total = sum(weights)
    for name in names:
        values = [state[name].detach() for state in states]
        if any(v.shape != values[0].shape for v in values):
            raise ValueError(f"ingredients disagree on the shape of {name!r}")
        if values[0].is_floating_point():
            avg = sum(w * v for w, v in zip(weights, values)) / total
            if name in masks:
                mask = as_bool_mask(masks[name], f"masks[{name!r}]", avg.shape).to(avg.device)
                avg = torch.where(mask, avg, avg.new_zeros(()))
            soup[name] = avg.to(values[0].dtype)
        else:
            if any(not torch.equal(v, values[0]) for v in values):
                raise ValueError(f"non-float tensor {name!r} differs between ingredients")
            soup[name] = values[0].clone()
    return soup
