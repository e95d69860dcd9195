"""Dynamic sparse training methods, each a few hooks on :class:`~sparsity_core.dst.updater.MaskUpdater`.

* SET: drop the smallest :math:`|W|`, grow uniformly at random; each layer's count constant.
* RigL: drop the smallest :math:`|W|`, grow the largest dense :math:`|\\nabla_W L|` of the
  update step; each layer's count constant.
* SNFS (sparse momentum): drop the smallest :math:`|W|`, grow the largest :math:`|m|` (the
  momentum of the dense gradient); the regrowth moves to layers of large mean :math:`|m|`,
  the total count is constant.
* SRigL: RigL with the same fan-in in every row (output unit), and neuron ablation.

References (keys in ``book/references.bib``): mocanu2018scalable (SET), evci2020rigging (RigL),
dettmers2019sparse (sparse momentum, "SNFS"), lasby2024dynamic (SRigL). Reference code
read, not copied: google-research/rigl ``rigl/rigl_tf2/mask_updaters.py`` (SET, RigL),
``rigl/sparse_optimizers.py`` (``SparseMomentumOptimizer``); TimDettmers/sparse_learning
``sparselearning/core.py`` (``Masking.truncate_weights``, ``gather_statistics``,
``calc_growth_redistribution``) and ``sparselearning/funcs.py``; calgaryml/condensed-sparsity
``src/rigl_torch/rigl_constant_fan.py`` (``RigLConstFanScheduler``) and
``configs/config.yaml``.

Taught in: Chapter 4, "Dynamic sparse training".
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from .. import checks
from ..masks import current_masks, keep_count, resolve_density, topk_mask, topk_rows
from .updater import MaskUpdater, UpdateSchedule, top_entries

__all__ = ["SET", "RigL", "SNFS", "SRigL", "SNFS_MOMENTUM", "SNFS_PRUNE_RATE", "SRIGL_GAMMA_SAL",
           "redistribute", "constant_fan_in_mask", "fan_in", "ablated_neurons", "topk_per_row"]

#: Momentum of the gradient average that sparse momentum grows by (dettmers2019sparse grow
#: by the SGD momentum buffer; sparse_learning ``mnist_cifar/main.py --momentum 0.9``; rigl's
#: ``SparseMomentumOptimizer(momentum=0.9)``).
SNFS_MOMENTUM = 0.9
#: Sparse momentum's initial prune rate, the ``alpha`` of its schedule (dettmers2019sparse:
#: prune rate 0.5 with cosine decay; sparse_learning ``sparselearning/core.py``
#: ``--prune-rate 0.50``).
SNFS_PRUNE_RATE = 0.5
#: SRigL's ablation threshold: a neuron with fewer than ``gamma_sal * k`` salient weights is
#: ablated, ``k`` the constant fan-in (lasby2024dynamic; condensed-sparsity
#: ``configs/config.yaml`` ``min_salient_weights_per_neuron: 0.3`` with
#: ``use_sparse_const_fan_in_for_ablation: True``; the ViT runs use 0.95).
SRIGL_GAMMA_SAL = 0.3


class SET(MaskUpdater):
    """Sparse Evolutionary Training (mocanu2018scalable): drop the smallest :math:`|W|`,
    grow uniformly at random among the inactive connections.

    The random scores come from ``generator`` (one ``torch.rand`` per tensor and update), so
    a run is reproducible given the generator's seed. The paper removes the fraction
    :math:`\\zeta` "closest to zero" once per epoch at a constant rate; here the schedule is
    RigL's (evci2020rigging's SET baseline), pass ``UpdateSchedule(alpha=zeta, ...)``.
    """

    def grow_scores(self, name: str, weight: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor:
        return torch.rand(weight.shape, generator=self.generator).to(weight.device)


class RigL(MaskUpdater):
    """Rigged Lottery (evci2020rigging, Algorithm 1): drop the smallest :math:`|W|`, grow the
    largest :math:`|\\partial L/\\partial W|` among the inactive connections, with the dense
    gradient of the update step's batch (:class:`~sparsity_core.dst.gradients.DenseGradients`).
    The dense gradient is only read at update steps; between them training is sparse.
    """

    needs_grad = True

    def grow_scores(self, name: str, weight: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor:
        return grad.abs()


def redistribute(total: int, shares: Sequence[float], capacity: Sequence[int]) -> list[int]:
    """Split ``total`` connections over layers in proportion to ``shares``, none above its
    ``capacity``; the parts add up to ``total`` exactly.

    Water-filling: a layer whose proportional part exceeds its capacity gets its capacity,
    and the rest is split again over the others; then the parts are rounded by largest
    remainder (ties to the lower layer index). Layers with zero share get nothing unless
    every layer with room has zero share, in which case those split equally.

    Args:
        total: connections to place, ``0 <= total <= sum(capacity)``.
        shares: one non-negative finite weight per layer.
        capacity: one non-negative int per layer (for density <= 1: the layer's size minus
            what it keeps).

    Returns:
        One int per layer.

    Notes:
        sparse_learning's ``calc_growth_redistribution`` caps a layer at 0.99 of its free
        room, spreads the excess evenly and rounds down, then corrects the shortfall at the
        next update; here the cap is density 1 and the total is exact at every update.
    """
    total = checks.integer(total, "total", lo=0)
    if len(shares) != len(capacity) or not shares:
        raise ValueError("shares and capacity must be non-empty and of the same length")
    shares = [checks.nonnegative(s, f"shares[{i}]") for i, s in enumerate(shares)]
    capacity = [checks.integer(c, f"capacity[{i}]", lo=0) for i, c in enumerate(capacity)]
    if total > sum(capacity):
        raise ValueError(f"total={total} exceeds the summed capacity {sum(capacity)}")
    parts = [0.0] * len(shares)
    free = [i for i, c in enumerate(capacity) if c > 0]
    left = float(total)
    while free and left > 0:
        weight = sum(shares[i] for i in free)
        share = {i: (shares[i] / weight if weight > 0 else 1 / len(free)) for i in free}
        full = [i for i in free if left * share[i] >= capacity[i]]
        if not full:
            for i in free:
                parts[i] = left * share[i]
            break
        for i in full:
            parts[i] = float(capacity[i])
            left -= capacity[i]
        free = [i for i in free if i not in full]
    counts = [math.floor(p) for p in parts]
    short = total - sum(counts)
    order = sorted(range(len(parts)), key=lambda i: (-(parts[i] - counts[i]), i))
    for i in order[:short]:
        counts[i] += 1
    return counts


class SNFS(MaskUpdater):
    """Sparse momentum (dettmers2019sparse), "sparse networks from scratch".

    At every step the updater averages the dense gradient,
    :math:`m \\leftarrow \\mu m + \\nabla_W L` (PyTorch SGD's momentum form). At an update:

    1. each layer drops ``round(f * nnz)`` connections of smallest :math:`|W|`;
    2. the dropped total is redistributed: layer :math:`l` regrows in proportion to the mean
       :math:`|m|` over its active connections (before the drop), capped at density 1
       (:func:`redistribute`); layers' counts change, the total stays exactly constant;
    3. within a layer, the connections with the largest :math:`|m|` grow.

    Args:
        momentum: :math:`\\mu` in [0, 1) (default :data:`SNFS_MOMENTUM`).

    The other arguments are :class:`~sparsity_core.dst.updater.MaskUpdater`'s; sparse
    momentum's own schedule is ``UpdateSchedule(alpha=SNFS_PRUNE_RATE, ...)``.

    Attributes:
        momenta: name -> :math:`m`, dense, shaped like the tensor.

    Notes:
        sparse_learning reads the optimizer's momentum buffer, which there also holds the
        dense gradient because its masks zero weights, not gradients; with masked
        gradients the optimizer's buffer is zero at inactive connections, so the updater
        keeps its own average (as rigl's ``SparseMomentumOptimizer`` does), without weight
        decay. Left out: the per-layer prune-rate cut for nearly dense layers
        (``Masking.adjust_prune_rate``); the schedule is RigL's cosine with ``T_end``, where
        sparse_learning decays the rate to 0.005 over all of training.
    """

    needs_grad = True

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: UpdateSchedule,
                 *, momentum: float = SNFS_MOMENTUM, generator: torch.Generator | None = None,
                 regrow_dropped: bool = True):
        super().__init__(model, optimizer, schedule, generator=generator, regrow_dropped=regrow_dropped)
        self.momentum = checks.fraction(momentum, "momentum", closed_high=False)
        self.momenta: dict[str, torch.Tensor] = {}

    def observe(self, name: str, grad: torch.Tensor | None) -> None:
        if grad is None:
            return
        m = self.momenta.get(name)
        self.momenta[name] = grad.clone() if m is None else m.mul_(self.momentum).add_(grad)

    def grow_scores(self, name: str, weight: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor:
        return self.momenta[name].abs()

    def grow_counts(self, masks: Mapping[str, torch.Tensor],
                    kept: Mapping[str, torch.Tensor]) -> dict[str, int]:
        names = list(masks)
        removed = sum(int(masks[n].sum()) - int(kept[n].sum()) for n in names)
        shares = [float(self.momenta[n].abs()[masks[n]].mean()) if bool(masks[n].any()) else 0.0
                  for n in names]
        room = [m.numel() - int((kept[n] if self.regrow_dropped else m).sum())
                for n, m in masks.items()]
        return dict(zip(names, redistribute(removed, shares, room)))


# --------------------------------------------------------------------------- constant fan-in
def fan_in(mask: torch.Tensor) -> torch.Tensor:
    """Active inputs of each row (output unit) of a mask ``(D_out, ...)``: int64 ``(D_out,)``."""
    return mask.reshape(mask.shape[0], -1).sum(1)


def constant_fan_in_mask(shape: Sequence[int], density: float | None = None, *,
                         sparsity: float | None = None,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """A random mask in which every row keeps exactly ``round(fan * density)`` inputs
    (``fan`` = the row's size, ``prod(shape[1:])``): SRigL's initial topology
    (condensed-sparsity ``RigLConstFanScheduler.random_sparsify``).

    Returns:
        Bool tensor of ``shape`` (at least 2-D).
    """
    shape = torch.Size(shape)
    if len(shape) < 2:
        raise ValueError(f"shape must have at least 2 dimensions (got {tuple(shape)})")
    d = resolve_density(density, sparsity)
    scores = torch.rand(shape[0], shape[1:].numel(), generator=checks.generator(generator))
    return topk_mask(scores, d, dim=-1).reshape(shape)


def topk_per_row(scores: torch.Tensor, counts: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Bool ``(R, L)``: the ``counts[r]`` best ``scores`` of row ``r`` among its ``allowed``
    entries (ties to the lower column). ``scores`` and ``allowed`` ``(R, L)``, ``counts``
    ``(R,)``; a row with fewer allowed entries than its count gets all of them."""
    s = scores.double().masked_fill(~allowed, -math.inf)
    order = torch.argsort(s, dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(s.shape[1]).expand_as(order))
    return (rank < counts.reshape(-1, 1)) & allowed


def ablated_neurons(drop_scores: torch.Tensor, grow_scores: torch.Tensor, mask: torch.Tensor,
                    n_keep: int, n_grow: int, *, gamma_sal: float, budget: int) -> torch.Tensor:
    """SRigL's neuron ablation (lasby2024dynamic): which rows to switch off.

    A weight is *salient* if it is among the ``n_keep`` active weights with the largest
    drop score (:math:`|W|`) or among the ``n_grow`` weights with the largest grow score
    (:math:`|\\nabla_W L|`), both over the whole layer. A row with fewer than
    :math:`\\max(1, \\lfloor\\gamma_\\mathrm{sal}\\,k\\rfloor)` salient weights is ablated, where
    :math:`k = \\lfloor \\mathrm{budget} / R \\rfloor` is the constant fan-in without ablation.
    The threshold is lowered if needed so that at least ``budget // L + 1`` rows stay (at
    fewer, the budget would not fit at density 1), as the reference code does.

    Args:
        drop_scores, grow_scores: ``(R, L)``.
        mask: bool ``(R, L)``, the active connections.
        n_keep, n_grow: connections kept and grown at this update.
        gamma_sal: :math:`\\gamma_\\mathrm{sal}` in [0, 1]; 0 ablates nothing.
        budget: the layer's connection budget (its count without ablation).

    Returns:
        Bool ``(R,)``, True for an ablated row.
    """
    rows, cols = mask.shape
    ablate = torch.zeros(rows, dtype=torch.bool, device=mask.device)
    min_rows = budget // cols
    if gamma_sal == 0 or min_rows >= rows:
        return ablate
    salient = top_entries(drop_scores, n_keep, mask) | topk_rows(grow_scores.reshape(1, -1), n_grow).reshape(rows, cols)
    counts = salient.sum(1)
    threshold = max(1, int(gamma_sal * (budget // rows)))
    threshold = min(threshold, int(counts.sort(descending=True).values[min_rows]))
    return counts < threshold


class SRigL(RigL):
    """Structured RigL (lasby2024dynamic): RigL with a constant fan-in and neuron ablation.

    Every active row (output unit) keeps the same number of inputs, so the layer stores
    as a dense ``(D_out, k)`` block of values and indices
    (:class:`~sparsity_core.dst.condensed.CondensedLinear`). At an update of a layer with
    budget :math:`B` (its count at the start), ``R`` rows and ``L`` inputs per row:

    1. ablation (:func:`ablated_neurons`): rows with too few salient weights switch off;
       the fan-in of the others becomes :math:`k = \\min(L, \\lfloor B / R_\\mathrm{active}\\rfloor)`;
    2. drop: the ``nnz - round(f * nnz)`` largest :math:`|W|` of the active rows are kept
       (compared over the layer), then each row is cut to its ``k`` largest;
    3. grow: each active row grows its ``k - kept`` largest :math:`|\\nabla_W L|` among
       its connections not kept (just-dropped ones included, as in the reference).

    Without ablation every count stays ``R k``; with it, ``R_active k <= B``. The updater
    ablates no row of the tensors in ``no_ablation`` (default: the last masked tensor, the
    output layer, as the reference does when no names are given). Ablation is re-decided at
    each update, so a row whose gradient grows salient comes back.

    Args:
        gamma_sal: :math:`\\gamma_\\mathrm{sal}` in [0, 1] (default :data:`SRIGL_GAMMA_SAL`;
            0 turns ablation off).
        no_ablation: tensor names never ablated (None: the last masked tensor).

    The other arguments are :class:`RigL`'s; every mask must have a constant fan-in
    (:func:`constant_fan_in_mask`). Just-dropped connections may always regrow.

    Attributes:
        budgets: name -> the connection budget :math:`B`.
        ablated: name -> bool ``(R,)``, the rows ablated at the last update.

    Notes:
        The reference trims rows above ``k`` by the order of a sort over a bool mask; here
        by :math:`|W|`. It derives :math:`B` from the target sparsity, here from the count
        the layer starts with.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: UpdateSchedule,
                 *, gamma_sal: float = SRIGL_GAMMA_SAL, no_ablation: Sequence[str] | None = None,
                 generator: torch.Generator | None = None):
        super().__init__(model, optimizer, schedule, generator=generator, regrow_dropped=True)
        self.gamma_sal = checks.fraction(gamma_sal, "gamma_sal")
        if isinstance(no_ablation, str):
            no_ablation = (no_ablation,)
        no_ablation = (self.names[-1],) if no_ablation is None else tuple(no_ablation)
        unknown = [name for name in no_ablation if name not in self.names]
        if unknown:
            raise ValueError(f"no_ablation names {unknown} are not masked tensors ({list(self.names)})")
        self.no_ablation = no_ablation
        self.budgets: dict[str, int] = {}
        self.ablated: dict[str, torch.Tensor] = {}
        for name, layer_mask in current_masks(model).items():
            fans = fan_in(layer_mask)
            if layer_mask.dim() < 2 or int(fans.min()) != int(fans.max()) or int(fans.min()) == 0:
                raise ValueError(f"SRigL needs a constant, non-zero fan-in: the rows of {name!r} keep "
                                 f"between {int(fans.min())} and {int(fans.max())} inputs "
                                 "(build masks with constant_fan_in_mask)")
            self.budgets[name] = int(layer_mask.sum())
            self.ablated[name] = torch.zeros(layer_mask.shape[0], dtype=torch.bool, device=layer_mask.device)

    def _fan(self, name: str, cols: int) -> int:
        active = int((~self.ablated[name]).sum())
        return min(cols, self.budgets[name] // active)

    def select_kept(self, name: str, mask: torch.Tensor, drop_scores: torch.Tensor,
                    grow_scores: torch.Tensor, fraction: float) -> torch.Tensor:
        rows = mask.shape[0]
        m, d, g = mask.reshape(rows, -1), drop_scores.reshape(rows, -1), grow_scores.reshape(rows, -1)
        nnz = int(m.sum())
        n_drop = keep_count(nnz, fraction)
        if name in self.no_ablation:
            ablate = torch.zeros(rows, dtype=torch.bool, device=mask.device)
        else:
            ablate = ablated_neurons(d, g, m, nnz - n_drop, n_drop, gamma_sal=self.gamma_sal,
                                     budget=self.budgets[name])
        self.ablated[name] = ablate
        allowed = m & ~ablate.reshape(-1, 1)
        kept = top_entries(d, min(nnz - n_drop, int(allowed.sum())), allowed)
        fan = torch.full((rows,), self._fan(name, m.shape[1]), device=mask.device)
        return topk_per_row(d, fan, kept).reshape(mask.shape)

    def select_grown(self, name: str, mask: torch.Tensor, kept: torch.Tensor,
                     grow_scores: torch.Tensor, count: int) -> torch.Tensor:
        rows = mask.shape[0]
        k = kept.reshape(rows, -1)
        need = (self._fan(name, k.shape[1]) - k.sum(1)).masked_fill(self.ablated[name], 0)
        return topk_per_row(grow_scores.reshape(rows, -1), need, ~k).reshape(mask.shape)
