"""Dynamic sparse training (Chapter 4): train a sparse network from scratch while its
connectivity changes, at a constant parameter count.

* :mod:`~sparsity_core.dst.updater`: the drop-and-grow skeleton (:class:`MaskUpdater`), its
  schedule and the per-update record;
* :mod:`~sparsity_core.dst.gradients`: the dense gradient of masked weights (:class:`DenseGradients`);
* :mod:`~sparsity_core.dst.methods`: SET (mocanu2018scalable), RigL (evci2020rigging),
  sparse momentum / SNFS (dettmers2019sparse), SRigL with constant fan-in and neuron
  ablation (lasby2024dynamic);
* :mod:`~sparsity_core.dst.condensed`: the constant fan-in layer stored as ``(D_out, k)``
  values and indices, for inference (lasby2024dynamic).

Layer-wise budgets (uniform, ERK) come from :mod:`sparsity_core.allocation`, masks from
:mod:`sparsity_core.masks`, the cosine drop fraction from :mod:`sparsity_core.schedules`,
training from :func:`sparsity_core.training.fit` with the updater as a callback.
"""
from .condensed import CondensedLinear
from .methods import (SET, SNFS, SNFS_MOMENTUM, SNFS_PRUNE_RATE, SRIGL_GAMMA_SAL, RigL, SRigL,
                      ablated_neurons, constant_fan_in_mask, fan_in, redistribute, topk_per_row)
from .gradients import DenseGradients
from .updater import (RIGL_ALPHA, RIGL_DELTA_T, LayerUpdate, MaskUpdate, MaskUpdater,
                      UpdateSchedule, top_entries)

__all__ = [
    "UpdateSchedule", "MaskUpdater", "MaskUpdate", "LayerUpdate", "DenseGradients", "top_entries",
    "RIGL_ALPHA", "RIGL_DELTA_T",
    "SET", "RigL", "SNFS", "SRigL", "SNFS_MOMENTUM", "SNFS_PRUNE_RATE", "SRIGL_GAMMA_SAL",
    "redistribute", "constant_fan_in_mask", "fan_in", "ablated_neurons", "topk_per_row",
    "CondensedLinear",
]
