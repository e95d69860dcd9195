"""Timing block-sparse attention against causal SDPA and FlexAttention on one pattern.

:func:`time_block_attention` builds a sliding-window + global-block causal pattern at block
level (:func:`~sparsity_core.attention.patterns.a_shape_mask` on blocks: each query block keeps
its ``window`` most recent key blocks and the first ``globals_`` blocks; inside kept blocks the
causal token mask applies) and times, on the same random ``(1, heads, n, head_dim)`` tensors:

* ``sdpa``: ``scaled_dot_product_attention(..., is_causal=True)``, dense causal attention;
* ``gather``: :func:`~sparsity_core.attention.block_sparse.block_gather_attention` on a layout
  built once (plain PyTorch);
* ``flex``: FlexAttention with the same block mask, compiled (``compile_flex=False``: its
  unfused reference). FlexAttention has no CPU backward in torch 2.13: forward only.

Each of ``repeat`` rounds times every implementation and pass once (after one warm-up call
each), so a slow spell of the machine hits all of them; the fastest round is reported. With
``memory=True`` each call's peak memory is measured too (:func:`peak_memory_mb`, one more call
each). Used by ``ci/bench_attention.py`` and Chapter 6's "Going fast".

Taught in: Chapter 6, "Sparse attention".
"""
from __future__ import annotations

import ctypes
import gc
import math
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import checks
from .block_sparse import block_gather_attention, block_layout, flex_block_attention, flex_block_mask
from .patterns import a_shape_mask, causal_mask

__all__ = ["time_block_attention", "peak_memory_mb"]

_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - start)


def _status_kb(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_memory_mb(fn) -> float:
    """MiB of resident memory that ``fn()`` adds at its peak, over what the process holds when it
    starts; NaN where Linux's ``/proc`` does not allow the measurement.

    Freed heap memory is first returned to the system (glibc's ``malloc_trim``), the kernel's
    high-water mark ``VmHWM`` is reset (``5`` written to ``/proc/self/clear_refs``), ``fn`` runs,
    and the result is ``VmHWM`` minus the ``VmRSS`` before the call: the inputs are not counted,
    every intermediate and output is.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        _CLEAR_REFS.write_text("5")
        before = _status_kb("VmRSS")
    except (OSError, KeyError, AttributeError):
        return math.nan
    fn()
    return max(0.0, (_status_kb("VmHWM") - before) / 1024)


def time_block_attention(n: int, *, block: int = 64, window: int = 3, globals_: int = 1, heads: int = 4,
                         head_dim: int = 64, repeat: int = 3, compile_flex: bool = True, seed: int = 0,
                         memory: bool = False) -> dict:
    """``{n, kept, sdpa, gather, flex, "sdpa fwd+bwd", "gather fwd+bwd"}``: the kept fraction of
    causal blocks and milliseconds per call (fastest of ``repeat`` interleaved rounds); with
    ``memory``, also ``"<name> MiB"``: each call's :func:`peak_memory_mb`."""
    n = checks.positive_int(n, "n")
    block = checks.positive_int(block, "block")
    repeat = checks.positive_int(repeat, "repeat")
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, heads, n, head_dim, generator=g) for _ in range(3))
    nb = -(-n // block)
    blocks = a_shape_mask(nb, globals_, window)          # at block level: the first blocks + a causal window
    mask = causal_mask(n)
    layout = block_layout(blocks, block, n, mask=mask)
    flex_mask = flex_block_mask(blocks, block, n, mask=mask)
    qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
    forward = {"sdpa": lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True),
               "gather": lambda a, b, c: block_gather_attention(a, b, c, layout)}

    def no_grad(fn):
        def call():
            with torch.no_grad():
                fn(q, k, v)
        return call

    def train_step(fn):
        def call():
            for t in (qg, kg, vg):
                t.grad = None
            fn(qg, kg, vg).sum().backward()
        return call

    calls = {name: no_grad(fn) for name, fn in forward.items()}
    calls["flex"] = no_grad(lambda a, b, c: flex_block_attention(a, b, c, flex_mask, compiled=compile_flex))
    calls.update({f"{name} fwd+bwd": train_step(fn) for name, fn in forward.items()})
    best = {name: float("inf") for name in calls}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for call in calls.values():
            call()                                       # warm-up (and FlexAttention's compile)
        for _ in range(repeat):
            for name, call in calls.items():
                best[name] = min(best[name], _ms(call))
        peaks = {f"{name} MiB": peak_memory_mb(call) for name, call in calls.items()} if memory else {}
    return {"n": n, "kept": int(blocks.sum()) / (nb * (nb + 1) // 2), **best, **peaks}
