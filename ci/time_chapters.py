"""Benchmark: execute each chapter at smoke and default scale and print wall seconds.

  python ci/time_chapters.py [01_sdr ...] [--scales smoke default]

Results JSON go to a scratch folder (the committed records are not touched). Budgets
(DESIGN.md): smoke <= 30 s, default <= 180 s (aim 120 s) on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import nbtools

BUDGET_S = {"smoke": 30, "default": 180, "full": None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("chapters", nargs="*")
    ap.add_argument("--scales", nargs="+", default=["smoke", "default"], choices=list(BUDGET_S))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {"SPARSITY_RESULTS_DIR": str(Path(tmp) / "results")}
        for src in nbtools.chapters(args.chapters):
            for scale in args.scales:
                secs = nbtools.execute(src, Path(tmp) / scale / src.name,
                                       scale=scale, env=env)
                budget = BUDGET_S[scale]
                ok = "" if budget is None else ("ok" if secs <= budget else "OVER BUDGET")
                rows.append((src.stem, scale, secs, budget, ok))
                print(f"{src.stem:<20} {scale:<8} {secs:8.1f} s", flush=True)
    print(f"\n{'chapter':<20} {'scale':<8} {'seconds':>8} {'budget':>7}  "
          f"(threads per kernel: 2, cores here: {os.cpu_count()})")
    for stem, scale, secs, budget, ok in rows:
        print(f"{stem:<20} {scale:<8} {secs:8.1f} {budget or '-':>7}  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
