"""Side-by-side timing, reported as ratios from one run, with a hardware fingerprint.

Speed claims in the book are ratios of two methods timed in the same run on the same
machine; absolute seconds are recorded but never compared across machines.
"""
from __future__ import annotations

import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch

from . import __version__


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux, else ``platform.processor``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def hardware_fingerprint() -> dict:
    """What a number was measured on: CPU, threads, package, torch and Python versions."""
    return {
        "sparsity_core": __version__,
        "torch": torch.__version__.split("+")[0],
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "platform": sys.platform,
    }


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median and all repeats of one timed function."""

    name: str
    median: float
    repeats: tuple[float, ...]

    @property
    def per_second(self) -> float:
        """Calls per second at the median."""
        return 1.0 / self.median if self.median > 0 else float("inf")


def time_call(fn: Callable[[], object], *, name: str = "", repeat: int = 5,
              warmup: int = 1, min_seconds: float = 0.0) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeat`` timed ones.

    Each timed repeat calls ``fn`` as many times as needed to last ``min_seconds``
    (at least once) and records the mean per call; the median over repeats is reported.

    Args:
        fn: a function of no arguments.
        name: a label for tables.
        repeat: timed repeats (>= 1).
        warmup: untimed calls first (>= 0).
        min_seconds: minimum duration of one repeat, for very fast functions.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1 (got repeat={repeat})")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0 (got warmup={warmup})")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        times.append(elapsed / calls)
    return Timing(name=name, median=statistics.median(times), repeats=tuple(times))
