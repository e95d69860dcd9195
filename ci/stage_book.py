"""Stage the book for rendering with executed chapters: copy the book's sources to a
folder and put the executed notebooks in place of the committed (stripped) ones.

Widget outputs (tqdm's progress bars under Jupyter) keep only their text form: a rendered
widget would make every page load require.js and the widget manager from a public CDN, and
the book must work offline (``book/_ext/offline_assets.py``).

  python ci/stage_book.py --executed _build/executed --out _build/site
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import nbtools

TOP_FILES = ("_config.yml", "_toc.yml")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def without_widgets(nb):
    """``nb`` with every widget view dropped from its outputs (their ``text/plain`` kept) and
    the notebook's widget state removed. Returns the notebook (mutated)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            out.get("data", {}).pop(WIDGET_MIME, None)
    nb.metadata.pop("widgets", None)
    return nb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--executed", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(nbtools.BOOK, args.out / "book")
    for name in TOP_FILES:
        shutil.copy2(nbtools.ROOT / name, args.out / name)
    for src in nbtools.chapters():
        executed = args.executed / "book" / src.name
        if not executed.exists():
            raise SystemExit(f"{src.stem} was not executed: {executed} is missing")
        nbtools.write(without_widgets(nbtools.read(executed)), args.out / "book" / src.name)
    print(f"staged the book in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
