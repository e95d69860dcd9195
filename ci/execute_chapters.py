"""Execute chapters with papermill into executed copies; optionally refresh the committed ones.

  python ci/execute_chapters.py --scale default --out _build/executed --refresh
      runs each chapter once at the book's scale (results JSON go to data/results), and
      with --refresh writes the stripped notebook (scorecard output kept) back to book/.
  python ci/execute_chapters.py --scale smoke --out _build/smoke
      the smoke run (results go to $SPARSITY_RESULTS_DIR if set).
  python ci/execute_chapters.py --scale smoke --out _build/smoke --jobs 2
      what `make test` does: two chapters at a time, one thread each. A smoke run proves the
      parameters work and records nothing that is compared, so sharing the cores this way
      is safe; the book's own runs (default scale) stay one at a time on 2 threads.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbtools


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapters", nargs="*", help="chapter stems (01_sdr or 01); default: all")
    ap.add_argument("--scale", choices=("smoke", "default", "full"), default="default")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", type=Path, required=True, help="folder for executed copies")
    ap.add_argument("--refresh", action="store_true",
                    help="write each executed chapter back to book/ with outputs stripped")
    ap.add_argument("--jobs", type=int, default=1,
                    help="chapters run at once, each in its own process on OMP_NUM_THREADS / jobs "
                         "threads (at least 1); smoke scale only")
    args = ap.parse_args()
    if args.jobs < 1:
        ap.error("--jobs must be >= 1")
    if args.jobs > 1:
        if args.scale != "smoke" or args.refresh:
            ap.error("--jobs > 1 is for smoke runs only: the book's runs keep the thread count fixed")
        return run_parallel(args)
    if args.refresh and (args.scale != "default" or args.seed not in (None, 0)):
        ap.error("--refresh records the default run only (scale default, seed 0)")
    # the committed run passes no parameters: the notebook's own defaults are the book's
    scale = None if args.scale == "default" else args.scale
    for src in nbtools.chapters(args.chapters):
        dst = args.out / "book" / src.name
        seconds = nbtools.execute(src, dst, scale=scale, seed=args.seed,
                                  timeout=None if scale == "full" else 900)  # full: no per-cell limit
        print(f"{src.stem}: executed at scale {args.scale} in {seconds:.1f} s -> {dst}", flush=True)
        if args.refresh:
            nbtools.write(nbtools.strip(nbtools.read(dst)), src)
            print(f"{src.stem}: refreshed {src.relative_to(nbtools.ROOT)}", flush=True)
    return 0


def run_parallel(args) -> int:
    """Each chapter in a child process of this script (``--jobs 1``), ``args.jobs`` at a time;
    every chapter runs even when another fails; the exit status is the worst child's."""
    threads = max(1, int(os.environ.get("OMP_NUM_THREADS", "2")) // args.jobs)
    # chapters fix torch at 2 threads (seeding.DEFAULT_THREADS) whatever the environment says,
    # so jobs share the cores: OpenMP's idle threads must sleep, not spin, or each job's threads
    # spin on the cores the other needs (measured: 00_bench's smoke run 4x slower with spinning)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}

    def one(src: Path) -> tuple[str, int, str, float]:
        cmd = [sys.executable, __file__, src.stem, "--scale", args.scale, "--out", str(args.out)]
        if args.seed is not None:
            cmd += ["--seed", str(args.seed)]
        start = time.perf_counter()
        run = subprocess.run(cmd, env=env, capture_output=True, text=True)
        return src.stem, run.returncode, run.stdout + run.stderr, time.perf_counter() - start

    worst = 0
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for stem, code, log, seconds in pool.map(one, nbtools.chapters(args.chapters)):
            if code:
                print(log, file=sys.stderr, flush=True)
                print(f"{stem}: FAILED (exit {code}) after {seconds:.1f} s", flush=True)
                worst = max(worst, code)
            else:
                print(next((line for line in log.splitlines() if "executed at scale" in line),
                           f"{stem}: executed in {seconds:.1f} s"), flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main())
