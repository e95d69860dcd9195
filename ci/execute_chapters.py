"""Execute chapters with papermill into executed copies; optionally refresh the committed ones.

  python ci/execute_chapters.py --scale default --out _build/executed --refresh
      runs each chapter once at the book's scale (results JSON go to data/results), and
      with --refresh writes the stripped notebook (scorecard output kept) back to book/.
  python ci/execute_chapters.py --scale smoke --out _build/smoke
      the smoke run `make test` does (results go to $SPARSITY_RESULTS_DIR if set).
"""
from __future__ import annotations

import argparse
import sys
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
    args = ap.parse_args()
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


if __name__ == "__main__":
    sys.exit(main())
