r"""Input statistics of linear layers, gathered with forward hooks, for one-shot pruning.

One-shot pruning methods score weights with statistics of each layer's inputs on a few
calibration batches. With the inputs of a ``Linear(d_in, d_out)`` stacked as rows
:math:`X \in \mathbb{R}^{N \times d_{in}}` (every token of every sequence is a row):

.. math::
    \text{Wanda:}\quad S_{ij} = |W_{ij}|\,\lVert X_{:,j} \rVert_2
    \qquad
    \text{SparseGPT:}\quad H = \frac{2}{N} X^\top X

:class:`CalibrationCollector` accumulates :math:`X^\top X` (float64), the squared column
norms :math:`\sum_n X_{nj}^2`, the column sums :math:`\sum_n X_{nj}` (DSnoT's means and
variances) and N, for every hooked layer, over all batches run
inside its ``with`` block. Its :meth:`~CalibrationCollector.add_batch` plays the role of
SparseGPT's ``add_batch`` and Wanda's ``WrappedGPT.add_batch``.

References (keys in ``book/references.bib``): frantar2023sparsegpt (SparseGPT, H in
Sec. 3), sun2024simple (Wanda, Eq. 1); reference code IST-DASLab/sparsegpt
``sparsegpt.py`` and locuslab/wanda ``lib/layerwrapper.py`` (read, not copied).

Notes (deviations from the reference code, none of which changes a mask):
    * Both reference codes keep running means rescaled at every batch, in float32; we keep
      float64 sums and divide once, so the order of batches changes only the last bits.
    * SparseGPT's code divides by the number of *sequences*, ``2 X^T X / n_samples``; we
      divide by the number of rows N (tokens), the mean the formula states. The two differ
      by the constant factor T, which neither the dampening (relative to mean(diag H))
      nor the OBS update (ratios of entries of H^{-1}) sees.
    * Wanda's code stores ``||X_j||^2 / n_samples``; :meth:`column_norms` returns the
      paper's ``||X_j||_2``. A per-layer constant factor, so the per-row ranking is equal.

Taught in: Chapter 3, "Pruning II".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["LayerStats", "CalibrationCollector"]


@dataclass
class LayerStats:
    """Running sums for one layer (an accumulator, updated in place).

    Attributes:
        xtx: ``(d_in, d_in)`` float64, the sum of ``X^T X`` (None if ``gram=False``).
        sq_norms: ``(d_in,)`` float64, the sum of squared values per input column.
        sums: ``(d_in,)`` float64, the sum of values per input column.
        rows: N, the number of input rows seen.
    """

    xtx: torch.Tensor | None
    sq_norms: torch.Tensor
    sums: torch.Tensor
    rows: int = 0


class CalibrationCollector:
    """Context manager hooking ``nn.Linear`` layers and accumulating their input statistics.

    Example::

        with CalibrationCollector(model) as cal:
            for idx in calibration_batches:
                model(idx)
        H = cal.hessian("blocks.0.mlp.c_fc")            # (d_in, d_in) float64
        norms = cal.column_norms("blocks.0.mlp.c_fc")   # (d_in,) float64

    Args:
        model: the model whose layers are hooked.
        layers: ``{name: linear}`` to hook; default every ``nn.Linear`` in ``model`` by its
            ``named_modules`` path (a tied LM head is hooked like any other layer).
        gram: also accumulate ``X^T X`` (SparseGPT). ``False`` keeps only the column
            norms (Wanda), saving ``d_in^2`` float64 per layer.

    A layer's input of shape ``(*, d_in)`` (e.g. ``(B, T, C)``) counts as ``prod(*)`` rows.
    Hooks are registered on entry and removed on exit (also on error); the statistics
    stay readable afterwards. Statistics live on the device of the inputs.
    """

    def __init__(self, model: nn.Module, layers: dict[str, nn.Linear] | None = None, *, gram: bool = True):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module (got {type(model).__name__})")
        if layers is None:
            layers = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}
        elif not isinstance(layers, dict):
            raise TypeError(f"layers must be a dict of name -> nn.Linear (got {type(layers).__name__})")
        for name, layer in layers.items():
            if not isinstance(layer, nn.Linear):
                raise TypeError(f"layers[{name!r}] must be an nn.Linear (got {type(layer).__name__})")
        if not layers:
            raise ValueError("no nn.Linear layers to calibrate")
        self.layers = dict(layers)
        self.gram = gram
        self.stats: dict[str, LayerStats] = {}
        self._handles: list = []

    def __enter__(self) -> "CalibrationCollector":
        if self._handles:
            raise RuntimeError("this CalibrationCollector is already active")
        for name, layer in self.layers.items():
            self._handles.append(layer.register_forward_pre_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def hook(module, inputs):
            self.add_batch(name, inputs[0])
        return hook

    @torch.no_grad()
    def add_batch(self, name: str, x: torch.Tensor) -> None:
        """Add the inputs ``x`` ``(*, d_in)`` of layer ``name`` to its sums."""
        layer = self._layer(name)
        d_in = layer.in_features
        if x.shape[-1] != d_in:
            raise ValueError(f"inputs of {name!r} must end in d_in={d_in} (got {tuple(x.shape)})")
        x = x.detach().reshape(-1, d_in).to(torch.float64)  # (N_batch, d_in)
        stats = self.stats.get(name)
        if stats is None:
            xtx = torch.zeros(d_in, d_in, dtype=torch.float64, device=x.device) if self.gram else None
            zeros = torch.zeros(d_in, dtype=torch.float64, device=x.device)
            stats = self.stats[name] = LayerStats(xtx, zeros, zeros.clone())
        if stats.xtx is not None:
            stats.xtx += x.T @ x  # (d_in, d_in)
        stats.sq_norms += x.square().sum(dim=0)  # (d_in,)
        stats.sums += x.sum(dim=0)  # (d_in,)
        stats.rows += x.shape[0]

    def _layer(self, name: str) -> nn.Linear:
        if name not in self.layers:
            raise KeyError(f"{name!r} is not a calibrated layer; layers: {list(self.layers)}")
        return self.layers[name]

    def _stats(self, name: str) -> LayerStats:
        self._layer(name)
        stats = self.stats.get(name)
        if stats is None or stats.rows == 0:
            raise ValueError(f"layer {name!r} has seen no inputs; run the model inside the `with` block")
        return stats

    def rows(self, name: str) -> int:
        """N, the number of input rows layer ``name`` has seen."""
        self._layer(name)
        stats = self.stats.get(name)
        return 0 if stats is None else stats.rows

    def hessian(self, name: str) -> torch.Tensor:
        r"""SparseGPT's :math:`H = 2 X^\top X / N`, ``(d_in, d_in)`` float64 (needs ``gram=True``)."""
        stats = self._stats(name)
        if stats.xtx is None:
            raise ValueError("this collector was built with gram=False; X^T X was not accumulated")
        return 2 * stats.xtx / stats.rows

    def column_norms(self, name: str) -> torch.Tensor:
        r"""Wanda's :math:`\lVert X_{:,j} \rVert_2` over all N rows, ``(d_in,)`` float64."""
        return self._stats(name).sq_norms.sqrt()

    def column_means(self, name: str) -> torch.Tensor:
        r"""DSnoT's :math:`\mu_j = \frac1N \sum_n X_{nj}`, ``(d_in,)`` float64."""
        stats = self._stats(name)
        return stats.sums / stats.rows

    def column_variances(self, name: str) -> torch.Tensor:
        r"""DSnoT's :math:`\sigma_j^2 = \frac1N \sum_n X_{nj}^2 - \mu_j^2` (biased, as the
        reference's ``torch.var(unbiased=False)``), ``(d_in,)`` float64, clamped at 0."""
        stats = self._stats(name)
        mean = stats.sums / stats.rows
        return (stats.sq_norms / stats.rows - mean.square()).clamp_min(0.0)
