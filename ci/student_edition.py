"""Write the student edition of the book: every exercise left for the reader to write, every
solution gone, and a check after each exercise.

  python ci/student_edition.py --out _build/student            # every chapter (`make student`)
  python ci/student_edition.py 04_dst --out _build/student     # one chapter

In each chapter, for every exercise (a code cell tagged ``exercise`` followed by its hidden
solution, tagged ``solution``):

* the exercise cell keeps the stub, with each ``...`` turned into
  ``raise NotImplementedError(...)``, so that running it before writing it fails loudly;
* the solution cell is replaced by a check cell (tagged ``check``): the package's check of
  that function when ``sparsity_core.exercises`` has one (``check_rigl_update(rigl_update)``,
  which says in words what differs), otherwise the solution's own checking code, its asserts
  and prints, without the solution's definitions.

Outputs are stripped (the scorecard's too: a student's run writes its own). The notebooks land
in ``<out>/book/`` and run from there like the book's (paths come from the package).
"""
from __future__ import annotations

import argparse
import ast
import copy
import sys
from pathlib import Path

import nbtools

STUB_ERROR = "raise NotImplementedError(\"{name}: write this exercise, run the cell, then run the check below\")"


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


_DEFS = (ast.FunctionDef, ast.ClassDef)


def defined_functions(source: str) -> list[str]:
    """Names of the top-level functions and classes ``source`` defines, in order."""
    return [n.name for n in ast.parse(source).body if isinstance(n, _DEFS)]


def stub_source(source: str) -> str:
    """The exercise stub with every line that is only ``...`` raising NotImplementedError."""
    names = defined_functions(source) or ["this exercise"]
    out = []
    for line in source.splitlines():
        if line.strip() == "...":
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + STUB_ERROR.format(name=", ".join(names)))
        else:
            out.append(line)
    return "\n".join(out)


def check_source(chapter: str, stub: str, solution: str, checked: set[tuple[str, str]]) -> str:
    """The check cell that replaces a solution: the package's checks of the stub's functions that
    have one, then the solution's own statements other than the definitions the reader writes."""
    names = defined_functions(stub)
    lines = [f"# check {', '.join(names) or 'your code'}: run after writing the exercise above"]
    package = [n for n in names if (chapter, n) in checked]
    if package:
        lines.append(f"from sparsity_core.exercises import {', '.join('check_' + n for n in package)}")
        lines += [f"check_{n}({n})" for n in package]
    tree = ast.parse(solution)
    rest = [n for n in tree.body if not (isinstance(n, _DEFS) and n.name in names)]
    if rest and (len(package) < len(names) or not names):
        src_lines = solution.splitlines()
        for node in rest:
            lines.append("\n".join(src_lines[node.lineno - 1: node.end_lineno]))
    return "\n".join(lines)


def student_notebook(nb, chapter: str, checked: set[tuple[str, str]]):
    """A copy of ``nb`` with exercises stubbed, solutions replaced by checks, outputs stripped."""
    nb = copy.deepcopy(nb)
    cells = nb.cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "code" or "exercise" not in _tags(cell):
            continue
        j = next(k for k in range(i + 1, len(cells)) if cells[k].cell_type == "code")
        solution = cells[j]
        if "solution" not in _tags(solution):
            raise ValueError(f"{chapter}: the code cell after an exercise is not its solution")
        stub = cell.source
        cell.source = stub_source(stub)
        solution.source = check_source(chapter, stub, solution.source, checked)
        solution.metadata["tags"] = ["check"]
    nb = nbtools.strip(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapters", nargs="*", help="chapter stems (default: all)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from sparsity_core.exercises import EXERCISES

    checked = set(EXERCISES)
    for src in nbtools.chapters(args.chapters):
        nb = student_notebook(nbtools.read(src), src.stem, checked)
        dst = args.out / "book" / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        nbtools.write(nb, dst)
        n = sum("check" in _tags(c) for c in nb.cells)
        print(f"{src.stem}: {n} exercises, {sum(ch == src.stem for ch, _ in checked)} checked by the package -> {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
