"""Magnitude and random pruning: two scores on the shared :class:`~.base.Pruner` skeleton.

* :class:`MagnitudePruner`: score ``|W|`` (han2015learning). With ``scope="layer"`` it is
  class-uniform pruning, with ``scope="global"`` class-blind pruning; with a
  :class:`~.base.GradualPruner` and a cubic schedule it is AGP (zhu2017prune); rounds of
  it with rewinding are IMP (frankle2019lottery, see :mod:`.imp`).
* :class:`RandomPruner`: i.i.d. uniform scores, so every layer keeps a uniformly random
  subset of the size its budget allows (random pruning at initialisation,
  liu2022unreasonable; with ``allocation=erdos_renyi_densities`` the ER/ERK random masks
  of mocanu2018scalable and evci2020rigging).

Taught in: Chapter 2, "Pruning I".
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..allocation import uniform_densities
from .base import Allocation, Pruner, Scope

__all__ = ["MagnitudePruner", "RandomPruner"]


class MagnitudePruner(Pruner):
    """Keep the largest ``|W|`` (han2015learning). Arguments as :class:`~.base.Pruner`."""

    def score(self, name: str, weight: torch.Tensor, module: nn.Module) -> torch.Tensor:
        return weight.abs()


class RandomPruner(Pruner):
    """Keep a uniformly random subset: scores drawn from ``generator`` (required, so a
    mask is a function of the seed). Other arguments as :class:`~.base.Pruner`.

    Each call draws new scores (in target order), but pruning never revives a weight,
    so repeated calls keep shrinking one random mask.
    """

    def __init__(self, names: Sequence[str] | None = None, *, generator: torch.Generator,
                 scope: Scope = "layer", allocation: Allocation = uniform_densities):
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator (got {type(generator).__name__})")
        super().__init__(names, scope=scope, allocation=allocation)
        self.generator = generator

    def score(self, name: str, weight: torch.Tensor, module: nn.Module) -> torch.Tensor:
        return torch.rand(weight.shape, generator=self.generator,
                          device=self.generator.device, dtype=torch.float64).to(weight.device)
