"""One call fixes every source of randomness a chapter uses.

Randomness elsewhere in the package is explicit: stochastic functions take a
``torch.Generator`` (or a ``numpy.random.Generator``); nothing is seeded at import.
"""
from __future__ import annotations

import random

import numpy as np
import torch

#: The thread count every chapter runs with: the book's reference machine has 2 cores,
#: and a fixed count keeps reductions in the same order from run to run.
DEFAULT_THREADS = 2


def seed_everything(seed: int, threads: int | None = DEFAULT_THREADS) -> torch.Generator:
    """Seed Python, NumPy's legacy global RNG and torch; fix torch's thread count.

    Args:
        seed: a non-negative integer.
        threads: torch intra-op threads (``None`` leaves the setting alone).

    Returns:
        A fresh ``torch.Generator`` seeded with ``seed``, to pass to package functions.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int (got {type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (got seed={seed})")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int or None (got threads={threads!r})")
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def numpy_rng(seed: int) -> np.random.Generator:
    """A NumPy ``Generator`` (PCG64) for code that samples with NumPy."""
    return np.random.default_rng(seed)
