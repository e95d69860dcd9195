"""Compare each chapter's fresh results record with its committed record.

Usage: python ci/compare_results.py FRESH_DIR [COMMITTED_DIR]

The chapters are those listed in ``_toc.yml`` (not the records that happen to exist): a
chapter whose committed or fresh record is missing fails. Records are compared by
``sparsity_core.claims.compare_records``: every field but the stamp and the free-text note
equal, each measured value within the tolerance that ``data/paper_claims.csv`` gives for
its claim, speed claims by status only, and no unexpected pass. Every claim of the CSV must
belong to a chapter of the table of contents. Exits 1 on any problem.

A claim's setting may name the machine it ran on ("median of 5, on AMD EPYC", from
``hardware_fingerprint``); that name is the run stamp's, so each record's own CPU (its stamp's
``cpu``) is read as ``<cpu>`` in its settings before the comparison (:func:`without_cpu`): a
fresh run on another processor compares equal where nothing but the processor differs.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbtools

from sparsity_core import paths
from sparsity_core.claims import compare_records, load_paper_claims, load_record


CPU_MARK = "<cpu>"


def without_cpu(record: dict) -> dict:
    """A copy of ``record`` whose claim settings name its stamp's CPU as ``<cpu>``."""
    record = copy.deepcopy(record)
    cpu = record.get("stamp", {}).get("cpu")
    if cpu:
        for claim in record.get("claims", []):
            if isinstance(claim.get("setting"), str):
                claim["setting"] = claim["setting"].replace(cpu, CPU_MARK)
    return record


def problems_for(fresh_dir: Path, committed_dir: Path, chapters: list[str]) -> list[str]:
    """Every problem, one line each, prefixed by its chapter."""
    rows = load_paper_claims()
    out = [f"{cid}: chapter {row.chapter!r} of data/paper_claims.csv is not in _toc.yml"
           for cid, row in rows.items() if row.chapter not in chapters]
    for chapter in chapters:
        committed, fresh = committed_dir / f"{chapter}.json", fresh_dir / f"{chapter}.json"
        missing = [f"no {name} record at {p}" for name, p in (("committed", committed), ("fresh", fresh))
                   if not p.exists()]
        if missing:
            out += [f"{chapter}: {m}" for m in missing]
            continue
        own = {cid: row for cid, row in rows.items() if row.chapter == chapter}
        out += [f"{chapter}: {p}" for p in compare_records(without_cpu(load_record(committed)),
                                                            without_cpu(load_record(fresh)), own)]
    return out


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    fresh_dir = Path(argv[0])
    committed_dir = Path(argv[1]) if len(argv) == 2 else paths.committed_results_dir()
    chapters = nbtools.toc_chapters()
    if not chapters:
        print("no chapters in _toc.yml", file=sys.stderr)
        return 1
    problems = problems_for(fresh_dir, committed_dir, chapters)
    for p in problems:
        print(p)
    bad = {p.split(":", 1)[0] for p in problems}
    for chapter in chapters:
        if chapter not in bad:
            print(f"{chapter}: fresh results agree with the committed record")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
