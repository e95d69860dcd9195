"""Compare a fresh run's results JSON with the committed record, chapter by chapter.

Usage: python ci/compare_results.py FRESH_DIR [COMMITTED_DIR]
Exits 1 if any committed chapter is missing from FRESH_DIR or differs (stamp ignored;
each claim's measured value within its own repro_rtol; speed claims by status only).
"""
from __future__ import annotations

import sys
from pathlib import Path

from sparsity_core import paths
from sparsity_core.claims import compare_records, load_record


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    fresh_dir = Path(argv[0])
    committed_dir = Path(argv[1]) if len(argv) == 2 else paths.committed_results_dir()
    committed = sorted(p for p in committed_dir.glob("*.json") if p.stem.count(".") == 0)
    if not committed:
        print(f"no committed records in {committed_dir}", file=sys.stderr)
        return 1
    bad = 0
    for path in committed:
        fresh = fresh_dir / path.name
        if not fresh.exists():
            print(f"{path.stem}: no fresh record at {fresh}")
            bad += 1
            continue
        problems = compare_records(load_record(path), load_record(fresh))
        for p in problems:
            print(f"{path.stem}: {p}")
        bad += bool(problems)
        if not problems:
            print(f"{path.stem}: fresh results agree with the committed record")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
