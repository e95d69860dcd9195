"""One dynamic-sparse-training run of an MLP classifier: the unit of Chapter 4's experiments.

:func:`train_mlp` builds an :class:`~sparsity_core.models.MLP`, puts random masks on it at
given per-layer densities (constant fan-in masks for SRigL), trains it with SGD, Nesterov
momentum and a cosine learning rate through :func:`~sparsity_core.training.fit`, with one
of the updaters of :mod:`sparsity_core.dst.methods` as a callback, and returns the test
accuracy together with what the chapter plots: the masks at the start and at the end, the
record of every mask update, and the fraction of weights that were ever active
("in-time over-parameterisation", liu2021do).

Pairing: runs with the same ``seed`` share the initial weights (same ``sizes``), the initial
masks (same ``sizes``, densities and mask kind) and the batch order, so the difference of two
methods at one seed is a paired difference.

Also here: :func:`sparse_wide` (Sparse-IFT's Sparse Wide transformation at equal FLOPs,
thangarasa2024sparse) and :func:`weight_macs` (multiply-adds of each weight per example,
for FLOP budgets of convolutional networks).

Not imported by ``sparsity_core.dst`` (it needs the models and the training loop, which the
method modules do not): ``from sparsity_core.dst.experiments import train_mlp``.

Taught in: Chapter 4, "Dynamic sparse training".
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from scipy import stats
from torch import nn

from .. import checks
from ..allocation import PRUNABLE, layer_shapes
from ..masks import apply_masks, current_masks, masked_tensors, random_mask
from ..models import MLP
from ..training import accuracy, classification_loss, fit
from .methods import SET, SNFS, SNFS_PRUNE_RATE, SRigL, RigL, constant_fan_in_mask
from .updater import RIGL_ALPHA, MaskUpdate, UpdateSchedule

__all__ = ["METHODS", "SGD_LR", "SGD_MOMENTUM", "SGD_WEIGHT_DECAY", "BATCH_SIZE", "T_END_FRACTION",
           "RunConfig", "SparseRun", "PairedDifference", "train_mlp", "paired_difference", "sparse_wide",
           "weight_macs"]

#: Methods :func:`train_mlp` knows: no mask, a fixed random mask, and the four updaters.
METHODS = ("dense", "static", "set", "rigl", "snfs", "srigl")
#: SGD with Nesterov momentum, sparse_learning's MNIST defaults (dettmers2019sparse,
#: ``mnist_cifar/main.py``: ``--lr 0.1 --momentum 0.9 --l2 5e-4 --batch-size 100``, Nesterov).
SGD_LR = 0.1
SGD_MOMENTUM = 0.9
SGD_WEIGHT_DECAY = 5e-4
BATCH_SIZE = 100
#: Mask updates stop after this fraction of training (evci2020rigging: "roughly 3/4").
T_END_FRACTION = 0.75
#: Offsets that derive the mask and batch generators from ``seed`` (any fixed distinct values).
_MASK_STREAM, _BATCH_STREAM, _UPDATER_STREAM = 1_000_003, 2_000_003, 3_000_017


@dataclass(frozen=True)
class RunConfig:
    """One training run.

    Attributes:
        sizes: the MLP's ``[D_in, hidden..., D_out]``.
        method: one of :data:`METHODS`.
        densities: tensor name (``'fc1.weight'``) -> density in (0, 1] for every weight of
            the MLP; None for ``'dense'`` (and only then).
        steps: optimizer steps.
        seed: initial weights, masks, batch order and SET's random growth all derive from it.
        batch_size, lr, momentum, weight_decay: SGD with Nesterov momentum; the learning rate
            follows a cosine from ``lr`` to 0 over ``steps``.
        delta_t: steps between mask updates (RigL's :math:`\\Delta T`).
        alpha: initial drop fraction; None: RigL's 0.3 (SET, RigL, SRigL), sparse
            momentum's 0.5 (SNFS).
        t_end_fraction: mask updates stop at ``round(t_end_fraction * steps)``.
        sparse_init: scale each masked layer's initial weights by :math:`1/\\sqrt{d_l}`, so a
            neuron with :math:`d_l` of its inputs starts with the output variance of a dense
            one (the sparse fan-in initialisation of evci2022gradient; without it a 90 %
            sparse LeNet-300-100 starts with logits about 30 times smaller and, in a pilot on
            MNIST, was still at chance after 150 steps, where the dense one reached 92 %). Every sparse method of a seed gets the same scaled weights.
    """

    sizes: tuple[int, ...]
    method: str
    densities: Mapping[str, float] | None
    steps: int
    seed: int = 0
    batch_size: int = BATCH_SIZE
    lr: float = SGD_LR
    momentum: float = SGD_MOMENTUM
    weight_decay: float = SGD_WEIGHT_DECAY
    delta_t: int = 100
    alpha: float | None = None
    t_end_fraction: float = T_END_FRACTION
    sparse_init: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", tuple(checks.positive_int(s, "sizes[i]") for s in self.sizes))
        if len(self.sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output size (got {self.sizes})")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS} (got {self.method!r})")
        if (self.method == "dense") != (self.densities is None):
            raise ValueError("densities must be None exactly for method='dense' "
                             f"(got method={self.method!r}, densities={self.densities!r})")
        if self.densities is not None:
            names = [f"fc{i}.weight" for i in range(1, len(self.sizes))]
            if sorted(self.densities) != sorted(names):
                raise ValueError(f"densities must give every weight of the MLP {names} "
                                 f"(got {sorted(self.densities)})")
            for name, d in self.densities.items():
                checks.real(d, f"densities[{name!r}]", lo=0.0, hi=1.0, closed_low=False)
            object.__setattr__(self, "densities", dict(self.densities))
        checks.positive_int(self.steps, "steps")
        checks.integer(self.seed, "seed", lo=0)
        checks.positive_int(self.batch_size, "batch_size")
        checks.real(self.lr, "lr", lo=0.0, closed_low=False)
        checks.fraction(self.momentum, "momentum", closed_high=False)
        checks.nonnegative(self.weight_decay, "weight_decay")
        checks.positive_int(self.delta_t, "delta_t")
        if self.alpha is not None:
            checks.fraction(self.alpha, "alpha")
        checks.fraction(self.t_end_fraction, "t_end_fraction", closed_low=False)
        if not isinstance(self.sparse_init, bool):
            raise TypeError(f"sparse_init must be a bool (got {self.sparse_init!r})")

    @property
    def t_end(self) -> int:
        """First step without mask updates."""
        return max(1, round(self.t_end_fraction * self.steps))

    def schedule(self) -> UpdateSchedule:
        """The :class:`~sparsity_core.dst.updater.UpdateSchedule` of the updater."""
        alpha = self.alpha if self.alpha is not None else (SNFS_PRUNE_RATE if self.method == "snfs" else RIGL_ALPHA)
        return UpdateSchedule(t_end=self.t_end, delta_t=self.delta_t, alpha=alpha)


@dataclass(frozen=True)
class SparseRun:
    """What :func:`train_mlp` returns.

    Attributes:
        config: the :class:`RunConfig`.
        accuracy: test accuracy after training.
        masks_init / masks_final: name -> bool mask ``(D_out, D_in)`` (empty for dense).
        ever_active: name -> bool, the union of every mask the run held (empty for dense).
        ever_active_curve: ``(step, fraction)`` of all weights ever active, at the start
            (step -1) and after each mask update.
        updates: the updater's :class:`~sparsity_core.dst.updater.MaskUpdate` records.
        seconds: wall-clock seconds of training (evaluation excluded).
    """

    config: RunConfig
    accuracy: float
    masks_init: dict[str, torch.Tensor] = field(repr=False)
    masks_final: dict[str, torch.Tensor] = field(repr=False)
    ever_active: dict[str, torch.Tensor] = field(repr=False)
    ever_active_curve: tuple[tuple[int, float], ...]
    updates: tuple[MaskUpdate, ...] = field(repr=False)
    seconds: float

    @property
    def nnz(self) -> int:
        """Weights (biases excluded) that the final network holds."""
        if not self.masks_final:
            return sum(a * b for a, b in zip(self.config.sizes[:-1], self.config.sizes[1:]))
        return sum(int(m.sum()) for m in self.masks_final.values())

    @property
    def ever_active_fraction(self) -> float:
        """Fraction of all weights active at some point of training (1 for dense)."""
        if not self.ever_active:
            return 1.0
        return sum(int(m.sum()) for m in self.ever_active.values()) / sum(m.numel() for m in self.ever_active.values())


class _EverActive:
    """Callback: the union of the masks, refreshed at each update step of ``schedule``."""

    def __init__(self, model: nn.Module, schedule: UpdateSchedule | None):
        self.union = current_masks(model)
        self.schedule = schedule
        self.curve = [(-1, self._fraction())]

    def _fraction(self) -> float:
        if not self.union:                  # a dense model: every weight is active
            return 1.0
        return sum(int(m.sum()) for m in self.union.values()) / sum(m.numel() for m in self.union.values())

    def __call__(self, step: int, model: nn.Module) -> None:
        if self.schedule is None or not self.schedule.is_update_step(step):
            return
        for name, mask in current_masks(model).items():
            self.union[name] |= mask
        self.curve.append((step, self._fraction()))


def train_mlp(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
              config: RunConfig) -> SparseRun:
    """Train one MLP as ``config`` says and test it.

    Args:
        x_train: ``(N, D_in)`` float inputs (or anything the MLP flattens to ``D_in``).
        y_train: ``(N,)`` int64 labels.
        x_test, y_test: the test split, same layout.
        config: a :class:`RunConfig`.

    Returns:
        A :class:`SparseRun`.

    Each step draws ``batch_size`` training rows uniformly with replacement from a generator
    seeded by ``config.seed`` (the same rows for every method). Masks are random with
    exactly ``round(density * numel)`` ones per layer (:func:`~sparsity_core.masks.random_mask`),
    or, for SRigL, the same count in every row (:func:`~sparsity_core.dst.constant_fan_in_mask`).
    Weights follow PyTorch's default initialisation drawn from the seed, masked entries
    zeroed, the kept ones scaled by :math:`1/\\sqrt{d_l}` (``config.sparse_init``).
    """
    if x_train.shape[0] != y_train.shape[0] or x_test.shape[0] != y_test.shape[0]:
        raise ValueError("inputs and labels must have the same number of rows")
    if x_train.shape[0] == 0 or x_test.shape[0] == 0:
        raise ValueError("the training and test splits must not be empty")
    model = MLP(list(config.sizes), generator=torch.Generator().manual_seed(config.seed))
    if config.densities is not None:
        mask_gen = torch.Generator().manual_seed(config.seed + _MASK_STREAM)
        make = constant_fan_in_mask if config.method == "srigl" else random_mask
        masks = {name: make(shape, config.densities[name], generator=mask_gen)
                 for name, shape in layer_shapes(model).items()}
        apply_masks(model, masks)
        if config.sparse_init:
            with torch.no_grad():
                for name, module, tensor, _ in masked_tensors(model):
                    module.parametrizations[tensor].original.mul_(1 / math.sqrt(config.densities[name]))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.momentum > 0)
    lr_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    updater = None
    if config.method in ("set", "rigl", "snfs", "srigl"):
        cls = {"set": SET, "rigl": RigL, "snfs": SNFS, "srigl": SRigL}[config.method]
        updater = cls(model, optimizer, config.schedule(),
                      generator=torch.Generator().manual_seed(config.seed + _UPDATER_STREAM))
    masks_init = current_masks(model)
    tracker = _EverActive(model, updater.schedule if updater is not None else None)
    batch_gen = torch.Generator().manual_seed(config.seed + _BATCH_STREAM)

    def batch(step: int):
        idx = torch.randint(0, x_train.shape[0], (config.batch_size,), generator=batch_gen)
        return x_train[idx], y_train[idx]

    callbacks = [updater, tracker] if updater is not None else []
    start = time.perf_counter()
    fit(model, batch, steps=config.steps, optimizer=optimizer, loss_fn=classification_loss,
        scheduler=lr_schedule, progress=False, callbacks=callbacks)
    seconds = time.perf_counter() - start
    if updater is not None:
        updater.remove_hooks()
    return SparseRun(config=config, accuracy=accuracy(model, x_test, y_test), masks_init=masks_init,
                     masks_final=current_masks(model), ever_active=tracker.union,
                     ever_active_curve=tuple(tracker.curve),
                     updates=tuple(updater.history) if updater is not None else (), seconds=seconds)


@dataclass(frozen=True)
class PairedDifference:
    """Seed-mean of ``a - b`` over paired seeds, in percentage points, with its 95 % t-interval.

    Attributes:
        mean: seed mean of the per-seed differences (pp).
        low, high: the two-sided 95 % Student-t interval of the mean (``nan`` for one seed).
        per_seed: the per-seed differences (pp), in seed order.
    """

    mean: float
    low: float
    high: float
    per_seed: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.mean:+.2f} pp [{self.low:+.2f}, {self.high:+.2f}]"


def paired_difference(a: Sequence[float], b: Sequence[float]) -> PairedDifference:
    """Paired difference of two arms' accuracies (fractions), run on the same seeds.

    Args:
        a, b: accuracies in [0, 1] of the two arms, one per seed, in the same seed order.

    Returns:
        A :class:`PairedDifference` of ``100 * (a - b)``: the mean and the interval
        :math:`\\bar d \\pm t_{0.975,\\,n-1}\\, s_d / \\sqrt{n}`.
    """
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) != len(b) or not a:
        raise ValueError(f"a and b must hold one accuracy per seed, as many each (got {len(a)} and {len(b)})")
    d = [100 * (x - y) for x, y in zip(a, b)]
    mean = sum(d) / len(d)
    if len(d) == 1:
        return PairedDifference(mean, math.nan, math.nan, tuple(d))
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))
    half = float(stats.t.ppf(0.975, len(d) - 1)) * sd / math.sqrt(len(d))
    return PairedDifference(mean, mean - half, mean + half, tuple(d))


def sparse_wide(sizes: Sequence[int], sparsity: float) -> tuple[tuple[int, ...], dict[str, float]]:
    """Sparse-IFT's Sparse Wide transformation of an MLP at equal FLOPs (thangarasa2024sparse).

    Every hidden layer widens by :math:`k = 1/\\sqrt{1 - s}` (rounded to the nearest unit);
    each weight then keeps exactly as many entries as the dense layer has, so every layer,
    and the network, costs the dense number of multiply-adds per example:

    .. math:: d_l = \\frac{n^\\mathrm{in}_l\\, n^\\mathrm{out}_l}{\\tilde n^\\mathrm{in}_l\\,\\tilde n^\\mathrm{out}_l}.

    A hidden-to-hidden layer gets density :math:`1/k^2 \\approx 1 - s`; the first and the
    last layer widen on one side only and get :math:`1/k`.

    Args:
        sizes: the dense MLP's ``[D_in, hidden..., D_out]`` (at least one hidden layer).
        sparsity: :math:`s` in [0, 1).

    Returns:
        ``(wide_sizes, densities)``, densities keyed ``'fc1.weight', ...``.

    Notes:
        The paper widens the layers of a ResNet or GPT whose inputs and outputs both widen,
        at sparsity :math:`s`, and leaves the stem and the head dense; an MLP's first and last
        layers would then cost :math:`k` times the dense FLOPs, so here they keep the dense
        count instead. Biases (``k`` times as many) are not counted.
    """
    sizes = [checks.positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
    if len(sizes) < 3:
        raise ValueError(f"sizes needs at least one hidden layer (got {sizes})")
    s = checks.fraction(sparsity, "sparsity", closed_high=False)
    k = 1 / math.sqrt(1 - s)
    wide = [sizes[0], *(max(1, round(h * k)) for h in sizes[1:-1]), sizes[-1]]
    densities = {f"fc{i}.weight": (sizes[i - 1] * sizes[i]) / (wide[i - 1] * wide[i])
                 for i in range(1, len(sizes))}
    return tuple(wide), densities


def weight_macs(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """Multiply-adds of each prunable weight in one forward pass of a single example.

    A Linear weight is used once per example; a convolution weight once per output
    position. Measured with forward hooks on one ``example`` (batch of 1); the count for a
    layer at density :math:`d` is ``d`` times this.

    Args:
        model: any module whose weights are listed by :func:`~sparsity_core.allocation.layer_shapes`.
        example: ``(1, *input_shape)``.

    Returns:
        name (``'features.conv1.weight'``) -> multiply-adds of the dense weight.
    """
    if not isinstance(example, torch.Tensor) or example.dim() < 1 or example.shape[0] != 1:
        raise ValueError("example must be a tensor holding one example, shape (1, ...)")
    shapes = layer_shapes(model)
    names = {id(module): f"{path}.weight" for path, module in model.named_modules()
             if isinstance(module, PRUNABLE) and f"{path}.weight" in shapes}
    positions: dict[str, int] = {}

    def hook(module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        # Linear: (1, *, D_out), one use per leading position; Conv: (1, C_out, *spatial)
        channels = out.shape[-1] if isinstance(module, nn.Linear) else out.shape[1]
        positions[names[id(module)]] = positions.get(names[id(module)], 0) + out.numel() // channels

    handles = [m.register_forward_hook(hook) for m in model.modules() if id(m) in names]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return {name: math.prod(shapes[name]) * positions[name] for name in shapes if name in positions}
