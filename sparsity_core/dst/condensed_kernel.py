"""A compiled single-row kernel for the condensed constant fan-in product (inference).

For one input row :math:`x` ``(D_in,)`` and a layer stored as values :math:`V` and input
indices :math:`I`, both ``(D_out, k)``,

.. math:: y_o = b_o + \\sum_{j<k} V_{o,j}\\, x_{I_{o,j}},

one pass over ``V`` and ``I`` (each read once, in order) with :math:`x` in the L1 cache,
rows split across threads. PyTorch's eager path makes three passes with two temporaries
(``index_select``, multiply, sum); on this project's 2-core CPU that takes longer than the
dense matrix-vector product it replaces (``ci/bench_condensed.py``). SRigL's authors run a
custom kernel too (lasby2024dynamic; calgaryml/condensed-sparsity's ``FixedFanInCuda`` for
GPUs, read, not copied); this one is a loop compiled by numba, whose ``prange`` splits the
rows across threads and whose ``fastmath`` lets LLVM vectorise the gather-multiply-add.

No gradients: :class:`~sparsity_core.dst.condensed.CondensedLinear` calls it only when no
gradient is being recorded and uses the eager path otherwise. Without numba installed,
:func:`available` is False and the eager path is used everywhere. The slow twin is the
eager path (tests/dst/test_condensed.py compares the two on awkward shapes).

Taught in: Chapter 4, "Dynamic sparse training" ("Going fast").
"""
from __future__ import annotations

import functools

import torch

__all__ = ["available", "condensed_matvec"]


@functools.cache
def _kernel():
    """The compiled loop (compiled on the first call, about 2 s), or None without numba."""
    try:
        import numba
    except ImportError:                                     # optional: the eager path serves
        return None

    @numba.njit(parallel=True, fastmath=True, nogil=True, cache=False)
    def matvec(x, values, indices, bias, out):               # pragma: no cover (compiled)
        rows, k = values.shape
        for r in numba.prange(rows):
            acc = bias[r]
            for j in range(k):
                acc += values[r, j] * x[indices[r, j]]
            out[r] = acc

    return matvec


def available() -> bool:
    """Whether the compiled kernel can run here (numba importable)."""
    return _kernel() is not None


def condensed_matvec(x: torch.Tensor, values: torch.Tensor, indices: torch.Tensor,
                     bias: torch.Tensor | None = None) -> torch.Tensor:
    """``y = b + sum_j V[:, j] * x[I[:, j]]`` for one row, compiled; no gradients.

    Args:
        x: ``(D_in,)`` float32, contiguous.
        values: ``(D_out, k)`` float32, contiguous.
        indices: ``(D_out, k)`` int32, contiguous, entries in ``[0, D_in)`` (not checked
            here: :class:`~sparsity_core.dst.condensed.CondensedLinear` checks them once when
            it is built).
        bias: ``(D_out,)`` float32 or None.

    Returns:
        ``(D_out,)`` float32, a new tensor.

    Threads: numba's, capped at ``torch.get_num_threads()`` so both libraries use the same
    cores.
    """
    kernel = _kernel()
    if kernel is None:
        raise RuntimeError("condensed_matvec needs numba (pip install numba); "
                           "CondensedLinear falls back to its eager path without it")
    if x.dim() != 1 or values.dim() != 2 or indices.shape != values.shape:
        raise ValueError(f"expected x (D_in,), values and indices (D_out, k) (got {tuple(x.shape)}, "
                         f"{tuple(values.shape)}, {tuple(indices.shape)})")
    if x.dtype != torch.float32 or values.dtype != torch.float32 or indices.dtype != torch.int32:
        raise TypeError("condensed_matvec takes float32 x and values and int32 indices")
    if bias is None:
        bias = values.new_zeros(values.shape[0])
    elif bias.shape != values.shape[:1]:
        raise ValueError(f"bias must have shape ({values.shape[0]},) (got {tuple(bias.shape)})")
    import numba

    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    out = values.new_empty(values.shape[0])
    kernel(x.detach().contiguous().numpy(), values.detach().contiguous().numpy(),
           indices.contiguous().numpy(), bias.detach().to(torch.float32).contiguous().numpy(), out.numpy())
    return out
