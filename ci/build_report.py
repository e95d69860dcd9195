"""Write (or, with --check, verify) what the committed records decide in the book's text:

* book/reproducibility.md, from data/results/*.json, the seed sweeps in data/sweeps/*.json (a
  sweep whose sources changed since is shown as stale, so the check fails until the page says
  so) and the seed papers' coverage (data/seed_papers.csv against the claims CSV and the
  chapters' citations);
* each chapter's "**Run time.**" paragraph, from its record's stamp (a chapter without one
  fails the check), and the run-time table of book/teaching.md.

Only markdown changes here: a chapter's code cells and scorecard output are left as they are.
"""
from __future__ import annotations

import argparse
import sys

import nbtools

from sparsity_core import paths
from sparsity_core.claims import load_paper_claims
from sparsity_core.report import (chapter_records, chapter_sweeps, cited_keys, load_seed_papers, report_markdown,
                                  runtime_paragraph, runtime_table, seed_coverage, with_runtime, with_runtime_table)


def chapter_markdown(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def runtime_updates(records: list[dict]) -> tuple[dict, list[str]]:
    """Notebook path -> the notebook with its run-time paragraph from the record (only those that
    change), and the problems (chapters without a notebook or without the paragraph)."""
    changed, problems = {}, []
    for r in records:
        path = nbtools.BOOK / f"{r['chapter']}.ipynb"
        if not path.exists():
            problems.append(f"{r['chapter']}: a record but no notebook {path.name}")
            continue
        nb = nbtools.read(path)
        paragraph = runtime_paragraph(r)
        found = False
        for cell in nb.cells:
            new = with_runtime(cell.source, paragraph) if cell.cell_type == "markdown" else None
            if new is not None:
                found = True
                if new != cell.source:
                    cell.source = new
                    changed[path] = nb
                break
        if not found:
            problems.append(f"{path.name}: no markdown paragraph starting with '**Run time.**' in its opening")
    return changed, problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true",
                    help="fail if the committed page or a chapter's run time differs from what the records give")
    args = ap.parse_args()
    page = paths.repo_root() / "book" / "reproducibility.md"
    records = chapter_records(paths.committed_results_dir())
    claims = load_paper_claims()
    claim_papers: dict[str, set[str]] = {}
    for row in claims.values():
        claim_papers.setdefault(row.chapter, set()).add(row.paper)
    citations = {p.stem: cited_keys(chapter_markdown(nbtools.read(p))) for p in nbtools.chapters(None)}
    coverage = seed_coverage(load_seed_papers(paths.data_dir() / "seed_papers.csv"), claim_papers, citations)
    text = report_markdown(records, claims, chapter_sweeps(records), coverage)
    notebooks, problems = runtime_updates(records)
    teaching = paths.repo_root() / "book" / "teaching.md"
    old_teaching = teaching.read_text(encoding="utf-8") if teaching.exists() else ""
    new_teaching = with_runtime_table(old_teaching, runtime_table(records))
    if new_teaching is None:
        problems.append(f"{teaching.name}: no run-time table markers")
        new_teaching = old_teaching
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.check:
        stale = [] if page.exists() and page.read_text(encoding="utf-8") == text else [page.name]
        stale += [p.name + " (its run-time paragraph)" for p in notebooks]
        stale += [teaching.name + " (its run-time table)"] if new_teaching != old_teaching else []
        for name in stale:
            print(f"{name} is stale: run `python ci/build_report.py`", file=sys.stderr)
        if stale or problems:
            return 1
        print(f"{page.name} and every chapter's run time are up to date")
        return 0
    page.write_text(text, encoding="utf-8")
    print(f"wrote {page}")
    if new_teaching != old_teaching:
        teaching.write_text(new_teaching, encoding="utf-8")
        print(f"wrote {teaching.name}'s run-time table")
    for path, nb in notebooks.items():
        nbtools.write(nb, path)
        print(f"wrote {path.name}'s run time")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
