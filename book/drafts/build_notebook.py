"""Build a chapter notebook from a cell-list script (drafts only).

    python book/drafts/build_notebook.py book/drafts/02_pruning_cells.py book/02_pruning.ipynb

The script defines ``cells``: a list of (kind, source, tags), kind "markdown" or "code".
Once a chapter lands in book/, its notebook is the source of truth and the script goes.
"""
import runpy
import sys

import nbformat


def main(script: str, out: str) -> None:
    cells = runpy.run_path(script)["cells"]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, src, tags in cells:
        cell = nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.validator.normalize(nb)
    nbformat.write(nb, out)
    print(f"wrote {out}: {len(nb.cells)} cells")


if __name__ == "__main__":
    main(*sys.argv[1:3])
