"""Write (or, with --check, verify) book/reproducibility.md from data/results/*.json and the
seed sweeps in data/sweeps/*.json (a sweep whose sources changed since is shown as stale, so
the check fails until the page says so)."""
from __future__ import annotations

import argparse
import sys

from sparsity_core import paths
from sparsity_core.claims import load_paper_claims
from sparsity_core.report import chapter_records, chapter_sweeps, report_markdown


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true",
                    help="fail if the committed page differs from what the records give")
    args = ap.parse_args()
    page = paths.repo_root() / "book" / "reproducibility.md"
    records = chapter_records(paths.committed_results_dir())
    text = report_markdown(records, load_paper_claims(), chapter_sweeps(records))
    if args.check:
        if not page.exists() or page.read_text(encoding="utf-8") != text:
            print(f"{page} is stale: run `python ci/build_report.py`", file=sys.stderr)
            return 1
        print(f"{page.name} is up to date")
        return 0
    page.write_text(text, encoding="utf-8")
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
