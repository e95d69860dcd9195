"""A constant fan-in linear layer stored condensed: ``(D_out, k)`` values and input indices.

When every output unit has the same number ``k`` of inputs (SRigL's constant fan-in,
lasby2024dynamic), the sparse weight packs into two dense ``(D_out, k)`` arrays, and

.. math:: y_{b,o} = b_o + \\sum_{j<k} V_{o,j}\\, x_{b,\\,I_{o,j}}

is a gather and a batched multiply-add with no per-row bookkeeping (unlike CSR's row
pointers). Dimension letters: B batch (any leading dimensions), D_in inputs, D_out outputs,
k the fan-in.

Forward, measured (``ci/bench_condensed.py``; D_in = D_out = 1024, 90 % sparse, a shared
2-core Xeon whose timings vary about 2x from run to run): for a single row without
gradients (inference) the compiled loop of :mod:`~sparsity_core.dst.condensed_kernel` is
fastest (about 70 us against 95 us for dense GEMV, 115 us for CSR and 140-260 us for the
eager gather-multiply-sum ``(x[I] * V).sum(-1)``, two threads); the eager gather is the
single-row path when gradients are recorded or numba is missing. From two rows on,
``torch.nn.functional.embedding_bag`` with ``x^T`` as the table, ``I`` as the bags and ``V``
as per-sample weights is fastest: one fused kernel that never builds the ``(B, D_out, k)``
gather, 0.2 ms against 14 ms (gather-sum) and 2.7 ms (``einsum``) at B = 32, 1.6 ms against
118 ms and 89 ms at B = 256. The eager paths are differentiable in ``x``, ``V`` and the
bias. condensed-sparsity's ``CondensedLinearFineGrained`` is the gather formulation; its
fast path is a custom C++/CUDA kernel (``FixedFanInCuda``), not used here.

References: lasby2024dynamic (the condensed representation); calgaryml/condensed-sparsity
``src/condensed_sparsity/condensed_linear.py`` (read, not copied).

Taught in: Chapter 4, "Dynamic sparse training" ("Going fast").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..masks import as_bool_mask
from .condensed_kernel import available as kernel_available
from .condensed_kernel import condensed_matvec

__all__ = ["CondensedLinear"]

#: Rows from which ``embedding_bag`` beats the gather-multiply-sum (``ci/bench_condensed.py``,
#: 1024 x 1024 at 90 %: at one row ``embedding_bag`` takes 446 us against 145 us, at two rows
#: 172 us against 250 us).
EMBEDDING_BAG_MIN_ROWS = 2


class CondensedLinear(nn.Module):
    """``y = x W^T + b`` for a sparse ``W`` with constant fan-in, stored as ``(D_out, k)``.

    Build it with :meth:`from_masked`. ``values`` (and ``bias``) are parameters and get
    gradients; ``indices`` is a buffer.

    Args:
        values: ``(D_out, k)`` float, the kept weights of each row in input order.
        indices: ``(D_out, k)`` integers, their input positions in ``[0, in_features)``; kept
            as int32 (half the index traffic of int64, as condensed-sparsity's ``FixedFanInCuda``).
        in_features: ``D_in``.
        bias: ``(D_out,)`` or None.
        use_kernel: for a single float32 row while no gradient is recorded (inference),
            run the compiled kernel of :mod:`~sparsity_core.dst.condensed_kernel` when numba
            is installed; False: always the eager PyTorch path (the kernel's slow twin).

    Shapes: ``(*, D_in) -> (*, D_out)``.
    """

    def __init__(self, values: torch.Tensor, indices: torch.Tensor, in_features: int,
                 bias: torch.Tensor | None = None, *, use_kernel: bool = True):
        super().__init__()
        if not isinstance(use_kernel, bool):
            raise TypeError(f"use_kernel must be a bool (got {use_kernel!r})")
        in_features = checks.positive_int(in_features, "in_features")
        if values.dim() != 2 or indices.shape != values.shape:
            raise ValueError(f"values and indices must both be (D_out, k) (got {tuple(values.shape)} "
                             f"and {tuple(indices.shape)})")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= in_features):
            raise ValueError(f"indices must lie in [0, {in_features})")
        if bias is not None and bias.shape != values.shape[:1]:
            raise ValueError(f"bias must have shape ({values.shape[0]},) (got {tuple(bias.shape)})")
        self.in_features = in_features
        self.out_features, self.fan_in = values.shape
        self.values = nn.Parameter(values.detach().clone())
        self.register_buffer("indices", indices.detach().to(torch.int32).clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.use_kernel = use_kernel

    @classmethod
    def from_masked(cls, weight: torch.Tensor, mask: torch.Tensor,
                    bias: torch.Tensor | None = None, *, use_kernel: bool = True) -> "CondensedLinear":
        """Condense ``where(mask, weight, 0)``.

        Args:
            weight: ``(D_out, D_in)``.
            mask: bool (or 0/1) ``(D_out, D_in)`` with the same number ``k >= 1`` of kept
                entries in every row.
            bias: ``(D_out,)`` or None.
            use_kernel: as in the constructor.

        Raises:
            ValueError: not 2-D, mismatched shapes, rows with different counts (SRigL's
                ablated rows included: remove those units first) or an empty mask.
        """
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            raise ValueError("weight must be a 2-D tensor (D_out, D_in)")
        mask = as_bool_mask(mask, "mask", weight.shape)
        counts = mask.sum(1)
        k = int(counts[0]) if counts.numel() else 0
        if not bool((counts == k).all()):
            raise ValueError(f"mask must keep the same number of inputs in every row (constant "
                             f"fan-in); its rows keep between {int(counts.min())} and {int(counts.max())}")
        if k == 0:
            raise ValueError("mask keeps no inputs")
        rows, cols = mask.nonzero(as_tuple=True)     # row-major: each row's inputs in order
        indices = cols.reshape(-1, k)
        return cls(weight.detach()[rows, cols].reshape(-1, k), indices, weight.shape[1], bias,
                   use_kernel=use_kernel)

    def to_dense(self) -> torch.Tensor:
        """The weight ``(D_out, D_in)``, zeros where nothing is stored."""
        dense = self.values.new_zeros(self.out_features, self.in_features)
        return dense.scatter(1, self.indices.long(), self.values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected inputs (*, {self.in_features}) (got {tuple(x.shape)})")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)                                # (B, D_in)
        if self._kernel_applies(x2):
            return condensed_matvec(x2[0], self.values, self.indices, self.bias).reshape(*lead, self.out_features)
        if x2.shape[0] >= EMBEDDING_BAG_MIN_ROWS:
            y = F.embedding_bag(self.indices, x2.t().contiguous(),          # table (D_in, B)
                                per_sample_weights=self.values, mode="sum").t()
        else:                                                               # 0 or 1 rows
            flat = self.indices.reshape(-1)
            gathered = x2.reshape(-1).index_select(0, flat) if len(x2) == 1 else x2.index_select(1, flat)
            y = (gathered.reshape(len(x2), self.out_features, self.fan_in) * self.values).sum(-1)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    def _kernel_applies(self, x2: torch.Tensor) -> bool:
        """One float32 row, nothing to differentiate, the kernel wanted and installed."""
        tensors = [x2, self.values] + ([self.bias] if self.bias is not None else [])
        recording = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
        return (self.use_kernel and x2.shape[0] == 1 and not recording
                and all(t.dtype == torch.float32 for t in tensors) and kernel_available())

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"fan_in={self.fan_in}, bias={self.bias is not None}, use_kernel={self.use_kernel}")
