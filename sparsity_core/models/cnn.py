"""Small convolutional classifiers: ``CNN1d`` for MNIST-1D, ``CNN2d`` for digits and MNIST.

Dimension letters: B batch, L signal length, H x W image size, C channels, K classes.

Taught in: Chapter 0, "The bench"; pruned in Chapter 2, sparsely trained in Chapter 4.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from .. import checks
from .mlp import reset_parameters_

__all__ = ["CNN1d", "CNN2d"]

#: MNIST-1D signals have 40 samples (greydanus2020scaling, the default ``template_len``
#: 12 padded and scaled to ``final_seq_length`` 40).
MNIST1D_LENGTH = 40


def _channels(channels: Sequence[int]) -> tuple[int, ...]:
    channels = tuple(channels)
    if not channels:
        raise ValueError("channels must list at least one conv layer's width (got ())")
    for i, c in enumerate(channels):
        checks.positive_int(c, f"channels[{i}]")
    return channels


class CNN1d(nn.Module):
    """1-D convnet for MNIST-1D: strided ``Conv1d + ReLU`` layers, then one linear head.

    Each conv layer has stride 2 and ``"same"``-style padding ``kernel_size // 2``, so the
    length halves (rounded up) per layer: 40 -> 20 -> 10 -> 5 with three layers. The head
    sees the flattened feature map, which keeps where in the signal a feature fired; the
    MNIST-1D reference convnet (greydanus2020scaling) is built the same way.

    Args:
        channels: output channels of each conv layer, e.g. ``(32, 32, 32)``.
        kernel_size: odd kernel width (>= 1).
        num_classes: K.
        length: input signal length L (40 for MNIST-1D).
        generator: if given, initial weights are drawn from it (see :func:`reset_parameters_`).

    Shapes: ``(B, L)`` or ``(B, 1, L)`` -> logits ``(B, K)``.
    """

    def __init__(self, channels: Sequence[int] = (32, 32, 32), kernel_size: int = 5,
                 num_classes: int = 10, length: int = MNIST1D_LENGTH, *,
                 generator: torch.Generator | None = None):
        super().__init__()
        channels = _channels(channels)
        kernel_size = checks.positive_int(kernel_size, "kernel_size")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (got kernel_size={kernel_size})")
        self.length = checks.positive_int(length, "length")
        checks.positive_int(num_classes, "num_classes")
        checks.generator(generator)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in, out_len = 1, self.length
        for i, c_out in enumerate(channels, start=1):
            layers[f"conv{i}"] = nn.Conv1d(c_in, c_out, kernel_size, stride=2, padding=kernel_size // 2)
            layers[f"act{i}"] = nn.ReLU()
            c_in, out_len = c_out, (out_len + 1) // 2  # stride 2, padding k//2, odd k
        self.features = nn.Sequential(layers)
        self.head = nn.Linear(c_in * out_len, num_classes)
        if generator is not None:
            reset_parameters_(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)  # (B, L) -> (B, 1, L)
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[2] != self.length:
            raise ValueError(f"CNN1d expects (B, {self.length}) or (B, 1, {self.length}) (got {tuple(x.shape)})")
        h = self.features(x)  # (B, C, ceil(L / 2**n_layers))
        return self.head(h.flatten(1))  # (B, K)


class CNN2d(nn.Module):
    """2-D convnet for 8x8 digits and 28x28 MNIST: ``[Conv3x3 + ReLU + MaxPool2]`` stages,
    adaptive average pooling to a fixed grid, then one linear head.

    The adaptive pool makes the head's input size independent of the image size: with the
    default two stages an 8x8 digit reaches the pool as 2x2 and a 28x28 MNIST image as
    7x7, and both leave it as ``pool x pool``. Max-pooling uses ``ceil_mode`` so a 1x1 map
    survives another stage.

    Args:
        channels: output channels of each stage, e.g. ``(16, 32)``.
        num_classes: K.
        in_channels: input channels (1 for grey images).
        pool: side of the adaptive-pool grid fed to the head.
        generator: if given, initial weights are drawn from it (see :func:`reset_parameters_`).

    Shapes: ``(B, in_channels, H, W)`` -> logits ``(B, K)``; any H, W >= 1.
    """

    def __init__(self, channels: Sequence[int] = (16, 32), num_classes: int = 10,
                 in_channels: int = 1, pool: int = 2, *, generator: torch.Generator | None = None):
        super().__init__()
        channels = _channels(channels)
        self.in_channels = checks.positive_int(in_channels, "in_channels")
        checks.positive_int(num_classes, "num_classes")
        checks.positive_int(pool, "pool")
        checks.generator(generator)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = in_channels
        for i, c_out in enumerate(channels, start=1):
            layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
            layers[f"act{i}"] = nn.ReLU()
            layers[f"pool{i}"] = nn.MaxPool2d(2, ceil_mode=True)
            c_in = c_out
        self.features = nn.Sequential(layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.head = nn.Linear(c_in * pool * pool, num_classes)
        if generator is not None:
            reset_parameters_(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"CNN2d expects (B, {self.in_channels}, H, W) (got {tuple(x.shape)})")
        h = self.pool(self.features(x))  # (B, C, pool, pool)
        return self.head(h.flatten(1))  # (B, K)
