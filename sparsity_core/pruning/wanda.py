r"""Wanda: pruning by weights and activations (sun2024simple).

Score of weight :math:`W_{ij}` of a ``Linear`` with inputs :math:`X \in \mathbb{R}^{N \times D_{in}}`
(every calibration token a row), the paper's Eq. 1:

.. math::
    S_{ij} = |W_{ij}| \cdot \lVert X_{:,j} \rVert_2 ,

compared **within each output row** :math:`i` (the paper's Sec. 3, "per-output
comparison group", and ``locuslab/wanda`` ``lib/prune.py``: ``sort_res = torch.sort(W_metric,
dim=-1)``), with no weight update. N:M keeps the ``n`` best of every ``m`` consecutive
inputs of a row. ``scope="layer"`` instead compares the whole layer at once, which is what
``torch.ao.pruning``'s ``WandaSparsifier`` does; the paper reports per-row as better for
LLMs. The column norms come from
:meth:`sparsity_core.calibration.CalibrationCollector.column_norms`; the reference code
stores ``||X_j||^2 / n_samples`` (``lib/layerwrapper.py``, ``scaler_row``) and takes its
square root, a per-layer constant away from ours, so the masks are the same.

Reference code read (not copied): ``locuslab/wanda`` ``lib/prune.py`` (``prune_wanda``),
``lib/layerwrapper.py`` (``WrappedGPT.add_batch``).

Taught in: Chapter 3, "Pruning II".
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from ..allocation import uniform_densities
from ..masks import pattern_mask
from .base import Allocation, Pruner, Scope

__all__ = ["wanda_scores", "wanda_mask", "WandaPruner"]


def wanda_scores(weight: torch.Tensor, column_norms: torch.Tensor) -> torch.Tensor:
    r""":math:`|W_{ij}|\,\lVert X_{:,j}\rVert_2` (sun2024simple, Eq. 1).

    Args:
        weight: ``(D_out, D_in)``.
        column_norms: ``(D_in,)``, non-negative and finite, the input-feature norms.

    Returns:
        ``(D_out, D_in)`` scores in the weight's dtype.
    """
    if weight.dim() != 2:
        raise ValueError(f"weight must be (D_out, D_in) (got shape {tuple(weight.shape)})")
    norms = torch.as_tensor(column_norms)
    if norms.shape != (weight.shape[1],):
        raise ValueError(f"column_norms must have shape ({weight.shape[1]},) to match weight "
                         f"{tuple(weight.shape)} (got {tuple(norms.shape)})")
    if not torch.isfinite(norms).all() or (norms < 0).any():
        raise ValueError("column_norms must be finite and non-negative")
    return weight.detach().abs() * norms.to(device=weight.device, dtype=weight.dtype)[None, :]


def wanda_mask(weight: torch.Tensor, column_norms: torch.Tensor, *, sparsity: float | None = None,
               nm: tuple[int, int] | None = None, scope: str = "row") -> torch.Tensor:
    """Wanda's mask: :func:`wanda_scores` selected per output row (default), per layer, or N:M.

    Args:
        weight: ``(D_out, D_in)``.
        column_norms: ``(D_in,)``.
        sparsity: unstructured fraction pruned, in [0, 1); or
        nm: ``(n, m)``, keep ``n`` of every ``m`` consecutive inputs (2:4 is ``(2, 4)``).
        scope: ``"row"`` (the paper) or ``"layer"`` (torch.ao's WandaSparsifier).

    Returns:
        Bool ``(D_out, D_in)``, True = keep.
    """
    return pattern_mask(wanda_scores(weight, column_norms), sparsity=sparsity, nm=nm, scope=scope)


class WandaPruner(Pruner):
    """Wanda on the :class:`~.base.Pruner` skeleton, for models whose input norms are known.

    Args:
        norms: tensor name -> ``(D_in,)`` input-feature norms (e.g. from a
            ``CalibrationCollector``, keyed ``'fc1.weight'``).
        names, scope, allocation: as :class:`~.base.Pruner`; ``scope`` defaults to
            ``"row"``, the paper's per-output comparison.

    For pretrained transformers use the layer-by-layer pipeline
    (:func:`sparsity_core.pruning.sequential.prune_sequential`), which recomputes the norms
    on the outputs of the already-pruned earlier blocks, as the reference code does.
    """

    def __init__(self, norms: Mapping[str, torch.Tensor], names: Sequence[str] | None = None, *,
                 scope: Scope = "row", allocation: Allocation = uniform_densities):
        super().__init__(names, scope=scope, allocation=allocation)
        self.norms = dict(norms)

    def score(self, name: str, weight: torch.Tensor, module: nn.Module) -> torch.Tensor:
        if name not in self.norms:
            raise KeyError(f"no input norms for {name!r}; norms has {sorted(self.norms)}")
        return wanda_scores(weight, self.norms[name])
