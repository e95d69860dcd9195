"""Strip outputs from committed chapters (all but the scorecard cell), in place.

  python ci/strip_outputs.py [--check] [book/NN_name.ipynb ...]
With --check, exit 1 if any chapter would change (a committed chapter with stray outputs)
or does not have exactly one scorecard cell (the last code cell, calling card.finish()).
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbtools


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    bad = 0
    for path in args.notebooks or nbtools.chapters():
        nb = nbtools.read(path)
        for problem in nbtools.scorecard_cell_problems(nb):
            print(f"{path}: {problem}")
            bad += 1
        stripped = nbtools.strip(copy.deepcopy(nb))
        if stripped != nb:
            if args.check:
                print(f"{path}: has outputs or metadata that should be stripped")
                bad += 1
            else:
                nbtools.write(stripped, path)
                print(f"stripped {path}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
