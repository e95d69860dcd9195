"""Time the three expert implementations of sparsity_core.moe against the dense FFN of equal
active FLOPs, forward and forward+backward, at a decode-sized and a training-sized batch.

    OMP_NUM_THREADS=1 python ci/bench_moe.py                 # the issue's grid (~1 min)
    python ci/bench_moe.py --tokens 64 --experts 8 --k 2 --repeat 3

Per (tokens T, experts E, k): a softmax top-k router (``TopKRouter``, no capacity) routes T
random tokens of width C; the experts (C -> H -> C, GELU) run as

* ``loop``: the per-token loop (the slow twin; skipped above ``--loop-max`` tokens),
* ``grouped``: sorted, padding-free (tan2024scattered's formulation in plain PyTorch),
* ``padded``: an ``(E, capacity, C)`` buffer at capacity factor ``--capacity-factor``
  (fedus2022switch; overflowing slots dropped, so it does *less* work when tokens drop),
* ``dense``: one FFN C -> k*H -> C, the dense layer with the same active multiply-adds per
  token,

and reports microseconds per call (fastest of ``--repeat`` interleaved rounds, ``sparsity_core.moe.bench.
time_experts``), the ratios to dense and padded/grouped, and the rows each implementation
multiplies (``padded`` includes its padding rows; the working-set bytes of the dispatch
buffer are rows x C x 4). Router time is excluded: every implementation gets the same
``Routing``. Forward+backward calls ``backward`` on the sum of the output and includes the
gradients of the experts' weights and of the routing weights.

Measured on the project's 2-core Xeon (one thread, C=256, H=1024, 8 experts, capacity factor
1.25; microseconds, fastest of 5; the machine's timings vary by up to 2x between runs):

=======  ==  =================  =======  =======  ======  ==============  ==============
tokens   k   pass               grouped  padded   dense   grouped/dense   padded/grouped
=======  ==  =================  =======  =======  ======  ==============  ==============
64       1   forward              1,948    2,198     940   2.07x           1.13x
64       1   forward+backward    16,313    7,725   2,920   5.59x           0.47x
64       2   forward              2,312    2,288   1,356   1.71x           0.99x
64       2   forward+backward    12,959    8,796   3,975   3.26x           0.68x
4096     1   forward             40,618   68,908  35,401   1.15x           1.70x
4096     1   forward+backward   120,469  151,605 108,141   1.11x           1.26x
4096     2   forward             78,046  142,367 114,469   0.68x           1.82x
4096     2   forward+backward   225,353  361,151 253,632   0.89x           1.60x
=======  ==  =================  =======  =======  ======  ==============  ==============

At 4,096 tokens the sorted grouped experts are within 1.15x of the dense FFN of equal
active FLOPs (faster at k = 2) and 1.26-1.82x faster than capacity padding. At 64 tokens
every expert reads its whole weight for a handful of rows: the MoE moves E/k times the
dense layer's weight bytes, and its backward writes fresh (E, C, H) gradients (profiled:
half the grouped backward is the stack of the per-expert weight gradients, mostly
first-touch page faults on 8 MB buffers), so at decode size it stays 2-6x the dense FFN and
the one-``bmm`` padded backward beats the grouped one.
"""
from __future__ import annotations

import argparse
import sys

import torch

from sparsity_core.bench import hardware_fingerprint
from sparsity_core.moe.bench import BENCH_D_HIDDEN as H
from sparsity_core.moe.bench import BENCH_D_MODEL as C
from sparsity_core.moe.bench import time_experts


def _print(rows: list[dict]) -> None:
    keyed = {(r["tokens"], r["experts"], r["k"], r["pass"], r["impl"]): r for r in rows}
    groups = sorted({k[:4] for k in keyed})
    print(f"{'tokens':>7} {'E':>3} {'k':>2} {'pass':>17} | {'loop':>9} {'grouped':>9} {'padded':>9} {'dense':>9} | "
          f"{'grouped/dense':>13} {'padded/grouped':>14} | {'rows g/p/d':>16}")
    for g in groups:
        us = {i: keyed[(*g, i)]["us"] if (*g, i) in keyed else float("nan") for i in ("loop", "grouped", "padded", "dense")}
        rw = {i: keyed[(*g, i)]["rows"] for i in ("grouped", "padded", "dense")}
        print(f"{g[0]:>7} {g[1]:>3} {g[2]:>2} {g[3]:>17} | {us['loop']:>9.0f} {us['grouped']:>9.0f} {us['padded']:>9.0f} "
              f"{us['dense']:>9.0f} | {us['grouped'] / us['dense']:>12.2f}x {us['padded'] / us['grouped']:>13.2f}x | "
              f"{rw['grouped']:>5}/{rw['padded']:>5}/{rw['dense']:>4}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[64, 4096])
    ap.add_argument("--experts", type=int, nargs="+", default=[8])
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--d-model", type=int, default=C)
    ap.add_argument("--d-hidden", type=int, default=H)
    ap.add_argument("--capacity-factor", type=float, default=1.25)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--loop-max", type=int, default=512, help="skip the per-token loop above this many tokens")
    args = ap.parse_args(argv)
    print(hardware_fingerprint())
    rows = []
    for t in args.tokens:
        for e in args.experts:
            for k in args.k:
                if k > e:
                    continue
                rows += time_experts(t, e, k, d_model=args.d_model, d_hidden=args.d_hidden,
                             capacity_factor=args.capacity_factor, repeat=args.repeat, loop_max=args.loop_max)
    print(f"\nmicroseconds per call (fastest of {args.repeat}), C={args.d_model}, H={args.d_hidden}, "
          f"capacity factor {args.capacity_factor}, {torch.get_num_threads()} threads")
    _print(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
