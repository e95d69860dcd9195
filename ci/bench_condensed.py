"""Time the condensed constant fan-in layer (sparsity_core.dst.CondensedLinear) against a
dense nn.Linear, torch's CSR layout and the masked dense layer used in training.

    OMP_NUM_THREADS=1 python ci/bench_condensed.py            # the full table (~20 s)
    python ci/bench_condensed.py --size 256 --sparsity 0.9 --batch 1 32

Two tables, times in microseconds per call (median of repeats, ``sparsity_core.bench.time_call``),
forward only, under ``torch.no_grad``; threads are torch's (``OMP_NUM_THREADS``):

1. forward formulations of the condensed product at 90 % sparsity, the measurement behind
   ``sparsity_core.dst.condensed.EMBEDDING_BAG_MIN_ROWS``;
2. condensed vs dense ``nn.Linear`` vs CSR (``W_csr @ x^T``) vs masked dense
   (``F.linear(x, where(M, W, 0))``, what the ``Mask`` parametrization computes), each
   sparsity and batch size, with the ratios dense/condensed and CSR/condensed (> 1: condensed
   is faster). ``condensed`` is the layer as it runs for inference (at batch 1 the compiled
   kernel of ``sparsity_core.dst.condensed_kernel``), ``condensed_eager`` the same layer with
   ``use_kernel=False`` (PyTorch's eager kernels only).

Masks have constant fan-in (``sparsity_core.dst.constant_fan_in_mask``), so CSR and condensed
hold the same weights. lasby2024dynamic report 3.4x over dense and 2.5x over CSR on CPU at
90 % sparsity and batch 1 with their own kernel and all cores.
"""
from __future__ import annotations

import argparse
import sys
import warnings

import torch
import torch.nn.functional as F

from sparsity_core.bench import hardware_fingerprint, time_call
from sparsity_core.dst import CondensedLinear, constant_fan_in_mask
from sparsity_core.dst.condensed_kernel import available as kernel_available
from sparsity_core.dst.condensed_kernel import condensed_matvec

SPARSITIES = (0.5, 0.8, 0.9, 0.95, 0.99)
BATCHES = (1, 32, 256)
SIZE = 1024                 # in = out features, the size the brief and the chapter use


def _layer(size: int, sparsity: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(size, size, generator=g)
    mask = constant_fan_in_mask((size, size), sparsity=sparsity, generator=g)
    bias = torch.randn(size, generator=g)
    return weight, mask, bias


def _time(fn, repeat: int) -> float:
    return time_call(fn, repeat=repeat, warmup=2, min_seconds=0.02).median * 1e6


def formulations(size: int, batches: list[int], repeat: int, sparsity: float = 0.9) -> list[dict]:
    """Microseconds of three ways to compute the condensed product, per batch size."""
    weight, mask, bias = _layer(size, sparsity)
    layer = CondensedLinear.from_masked(weight, mask, bias)
    values, indices = layer.values.detach(), layer.indices
    flat, (d_out, k) = indices.reshape(-1), values.shape
    ways = {
        "gather_sum": lambda x: (x.index_select(1, flat).reshape(x.shape[0], d_out, k) * values).sum(-1),
        "gather_einsum": lambda x: torch.einsum("bok,ok->bo", x.index_select(1, flat).reshape(x.shape[0], d_out, k),
                                                values),
        "embedding_bag": lambda x: F.embedding_bag(indices, x.t().contiguous(), per_sample_weights=values,
                                                   mode="sum").t(),
        "kernel": lambda x: (condensed_matvec(x[0], values, indices, None)[None] if x.shape[0] == 1
                             else torch.full((x.shape[0], d_out), float("nan"))),
    }
    rows = []
    for b in batches:
        x = torch.randn(b, size)
        reference = x @ layer.to_dense().detach().t()
        row = {"batch": b}
        for name, fn in ways.items():
            if name == "kernel" and (b != 1 or not kernel_available()):
                row[name] = float("nan")          # the compiled kernel takes one row
                continue
            torch.testing.assert_close(fn(x), reference, rtol=1e-4, atol=1e-4)
            row[name] = _time(lambda: fn(x), repeat)
        rows.append(row)
    return rows


def comparison(size: int, sparsities: list[float], batches: list[int], repeat: int) -> list[dict]:
    """Microseconds of dense, masked dense, CSR and condensed, per sparsity and batch."""
    rows = []
    for s in sparsities:
        weight, mask, bias = _layer(size, s)
        masked = torch.where(mask, weight, 0)
        csr = masked.to_sparse_csr()
        condensed = CondensedLinear.from_masked(weight, mask, bias)
        eager = CondensedLinear.from_masked(weight, mask, bias, use_kernel=False)
        for b in batches:
            x = torch.randn(b, size)
            fns = {
                "dense": lambda: F.linear(x, masked, bias),
                "masked": lambda: F.linear(x, torch.where(mask, weight, 0), bias),
                "csr": lambda: (csr @ x.t()).t() + bias,
                "condensed_eager": lambda: eager(x),
                "condensed": lambda: condensed(x),
            }
            expected = fns["dense"]()
            row = {"sparsity": s, "batch": b, "fan_in": condensed.fan_in}
            for name, fn in fns.items():
                torch.testing.assert_close(fn(), expected, rtol=1e-4, atol=1e-3)
                row[name] = _time(fn, repeat)
            row["dense/condensed"] = row["dense"] / row["condensed"]
            row["csr/condensed"] = row["csr"] / row["condensed"]
            rows.append(row)
    return rows


def _print(rows: list[dict]) -> None:
    cols = list(rows[0])
    print(" | ".join(f"{c:>15}" for c in cols))
    for row in rows:
        print(" | ".join(f"{row[c]:>15.2f}" if isinstance(row[c], float) else f"{row[c]:>15}" for c in cols))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=SIZE, help="in = out features")
    ap.add_argument("--sparsity", type=float, nargs="+", default=list(SPARSITIES))
    ap.add_argument("--batch", type=int, nargs="+", default=list(BATCHES))
    ap.add_argument("--repeat", type=int, default=7, help="timed repeats per cell (median reported)")
    args = ap.parse_args(argv)
    print(hardware_fingerprint())
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        print(f"\nforward formulations, 90 % sparse, {args.size}x{args.size}, microseconds")
        _print(formulations(args.size, sorted({1, 2, *args.batch}), args.repeat))
        print(f"\ncondensed vs dense / masked dense / CSR, {args.size}x{args.size}, microseconds")
        _print(comparison(args.size, args.sparsity, args.batch, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
