"""One training run of a (possibly masked) classifier, as the pruning chapters compare them.

Every comparison of Chapter 2 is a set of paired runs: the same data, the same number of
optimizer steps and the same batch order, with or without a mask: a lottery ticket and its
random-mask control (frankle2019lottery; rewinding to an early step, frankle2020linear), a static
random mask with ERK or uniform layer densities (liu2022unreasonable). :func:`train_classifier` is that run: a fresh optimizer, the
masks put on with their optimizer state zeroed (:func:`sparsity_core.masks.apply_masks`),
minibatches drawn with replacement from a generator seeded by :func:`batch_seed`, the package's
:func:`~sparsity_core.training.fit`, and the test accuracy.

Not imported by the package's ``__init__``: ``from sparsity_core.classifier_runs import
train_classifier``.

Taught in: Chapter 2, "Pruning I" (parts 2 and 3).
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from . import checks
from .masks import apply_masks
from .training import accuracy, classification_loss, fit

__all__ = ["batch_seed", "train_classifier"]

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
CallbackFactory = Callable[[torch.optim.Optimizer], Callable[[int, nn.Module], None]]

#: Multiplier of the batch-order seed: ``(seed + 1) * 1_000_003`` keeps the batch orders of
#: seeds ``s`` and ``s + 1`` (and seed 0) apart from the generators the chapters seed with ``s``
#: for weights and masks (a prime, so no small offset of one stream lands on another).
BATCH_SEED_PRIME = 1_000_003


def batch_seed(seed: int) -> int:
    """The seed of run ``seed``'s batch-order generator: ``1_000_003 * (seed + 1)``."""
    checks.integer(seed, "seed", lo=0)
    return BATCH_SEED_PRIME * (seed + 1)


def train_classifier(model: nn.Module, data, *, steps: int, seed: int, optimizer: OptimizerFactory,
                     batch_size: int, masks: Mapping[str, torch.Tensor] | None = None,
                     callbacks: Iterable[CallbackFactory] = ()) -> float:
    """Train ``model`` on ``data``'s training split and return its test accuracy.

    The run: ``opt = optimizer(model.parameters())``; if ``masks``, ``apply_masks(model, masks,
    optimizer=opt)`` (masked weights and their optimizer state zeroed, the masks kept through
    training); ``steps`` steps of :func:`~sparsity_core.training.fit` with
    :func:`~sparsity_core.training.classification_loss` on minibatches of ``batch_size`` rows
    drawn uniformly with replacement by a generator seeded ``batch_seed(seed)``; then
    :func:`~sparsity_core.training.accuracy` on the test split. Two runs with the same ``seed``
    see the same batches, so paired runs differ only in the model, its mask or its optimizer.

    Args:
        model: a classifier, ``x -> logits (B, n_classes)``; trained in place.
        data: anything with ``x_train (N, ...)``, ``y_train (N,)`` int64, ``x_test (M, ...)`` and
            ``y_test (M,)`` (a :class:`sparsity_core.data.ImageData`).
        steps: optimizer steps (>= 1).
        seed: the run's seed (>= 0); fixes the batch order only.
        optimizer: ``parameters -> torch.optim.Optimizer``, called once (a fresh optimizer per run).
        batch_size: rows per step (>= 1).
        masks: tensor name (``"fc1.weight"``) -> bool mask of that tensor's shape, or None.
        callbacks: factories ``opt -> callback(i, model)``, called with this run's optimizer, so
            that a callback can prune the optimizer state it masks (``fit``'s ``callbacks``).

    Returns:
        Test accuracy in ``[0, 1]``.

    Raises:
        TypeError: ``steps``, ``batch_size`` or ``seed`` not an int.
        ValueError: ``steps`` or ``batch_size`` below 1, ``seed`` negative, an empty training
            split, or a split whose ``x`` and ``y`` differ in length.
    """
    checks.integer(steps, "steps", lo=1)
    checks.integer(batch_size, "batch_size", lo=1)
    checks.integer(seed, "seed", lo=0)
    x, y = data.x_train, data.y_train
    if len(x) == 0:
        raise ValueError("the training split is empty")
    for split, (xs, ys) in {"train": (x, y), "test": (data.x_test, data.y_test)}.items():
        if len(xs) != len(ys):
            raise ValueError(f"x_{split} has {len(xs)} rows but y_{split} has {len(ys)}")
    opt = optimizer(model.parameters())
    if masks is not None:
        apply_masks(model, masks, optimizer=opt)
    gen = torch.Generator().manual_seed(batch_seed(seed))

    def batch(i):
        idx = torch.randint(0, len(y), (batch_size,), generator=gen)
        return x[idx], y[idx]

    fit(model, batch, steps=steps, optimizer=opt, loss_fn=classification_loss, progress=False,
        callbacks=[make(opt) for make in callbacks])
    return accuracy(model, data.x_test, data.y_test)
