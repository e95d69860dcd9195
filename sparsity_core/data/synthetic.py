"""Synthetic sequence tasks for training attention patterns (Chapter 6, part 3).

* :func:`column_walk_images`: "images" whose pixels follow the pixel above them, the periodic
  data on which Sparse Transformers' strided pattern beats the fixed one
  (child2019generating, Table 1: CIFAR-10 2.80 bits/dim strided, 2.85 fixed). Each column
  is a random walk down the rows, so a pixel depends on the token ``side`` places before it.
  The laptop analogue is the targets file's (claim 5.1: "x[r, c] = x[r - 1, c] + noise").
* :func:`column_walk_entropy`: the Bayes floor of next-token prediction on those images,
  in closed form.
* :func:`marked_lookup`: every position must output the value of one marked token anywhere
  in the sequence, the long-range task on which BigBird's global tokens matter
  (zaheer2020big, Sec. 2-3 and the targets file's claim 5.2).

Nothing here is learned or loaded; every draw comes from the ``generator``.
"""
from __future__ import annotations

import math

import torch

from .. import checks

__all__ = ["column_walk_images", "column_walk_entropy", "marked_lookup"]


def column_walk_images(batch: int, side: int, levels: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(batch, side * side)`` long, row-major images with values in ``[0, levels)``.

    Row 0 is uniform; row ``r`` is row ``r - 1`` plus a step drawn uniformly from
    ``{-1, 0, +1}`` per pixel, clamped to ``[0, levels - 1]``. The clamped walk is doubly
    stochastic, so every pixel is marginally uniform.

    Args:
        batch: images (>= 1).
        side: rows = columns (>= 2); the period of the flattened sequence.
        levels: intensity levels (>= 2).
        generator: the random source.
    """
    B = checks.positive_int(batch, "batch")
    side = checks.integer(side, "side", lo=2)
    levels = checks.integer(levels, "levels", lo=2)
    checks.generator(generator)
    x = torch.empty(B, side, side, dtype=torch.long)
    x[:, 0] = torch.randint(levels, (B, side), generator=generator)
    for r in range(1, side):
        step = torch.randint(-1, 2, (B, side), generator=generator)
        x[:, r] = (x[:, r - 1] + step).clamp(0, levels - 1)
    return x.reshape(B, side * side)


def column_walk_entropy(side: int, levels: int) -> float:
    """Nats per token: the lowest mean cross-entropy any model reaches predicting tokens
    ``1 .. side^2 - 1`` of :func:`column_walk_images` from the tokens before each.

    A token of row 0 is independent of its past (``log levels``). Below, the pixel above
    fixes the distribution: an interior level moves to one of 3 levels (``log 3``); the two
    edge levels stay with probability 2/3 (entropy ``H(1/3)``). Pixels are uniform, so
    ``(levels - 2) / levels`` of them are interior. Averaged over the ``side^2 - 1`` targets.
    """
    side = checks.integer(side, "side", lo=2)
    levels = checks.integer(levels, "levels", lo=2)
    h_edge = -(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3)
    h_below = ((levels - 2) * math.log(3) + 2 * h_edge) / levels
    n = side * side
    return ((side - 1) * math.log(levels) + (n - side) * h_below) / (n - 1)


def marked_lookup(batch: int, n: int, values: int, *,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One marked token per sequence; every position's target is its value.

    Tokens ``0 .. values - 1`` are unmarked values; ``values + v`` is the value ``v`` marked.
    Each sequence is ``n`` uniform unmarked tokens with one position (uniform) overwritten
    by a marked token. Chance accuracy is ``1 / values``.

    Args:
        batch: sequences (>= 1).
        n: tokens per sequence (>= 1).
        values: distinct values (>= 2); the vocabulary is ``2 * values``.
        generator: the random source.

    Returns:
        ``x (batch, n)`` long tokens, ``y (batch, n)`` long targets (the marked value at every
        position), ``key (batch,)`` long, the marked position.
    """
    B = checks.positive_int(batch, "batch")
    n = checks.positive_int(n, "n")
    V = checks.integer(values, "values", lo=2)
    checks.generator(generator)
    x = torch.randint(V, (B, n), generator=generator)
    key = torch.randint(n, (B,), generator=generator)
    v = torch.randint(V, (B,), generator=generator)
    x[torch.arange(B), key] = v + V
    return x, v[:, None].expand(B, n).clone(), key
