"""Notebook plumbing shared by the ci/ scripts: find chapters, execute, strip outputs.

Committed chapters carry no outputs except the scorecard cell (the one marked
``# NBVAL_CHECK_OUTPUT``), whose output *and* execution count are kept: nbval compares
that cell on every CI run, and it compares only cells that have an execution count.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
#: Tag of a cell that only makes sense with a reader at the keyboard (an ipywidgets control):
#: the automated runs never execute it (see :func:`execute`); it also carries nbval's own
#: ``nbval-skip`` tag, so that nbval skips it too. Its static figure lives in the cell before.
INTERACTIVE_TAG = "interactive"
CHAPTER_RE = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")


def chapters(names: list[str] | None = None) -> list[Path]:
    """The chapter notebooks ``book/NN_name.ipynb`` in book order (optionally only ``names``,
    given as stems like ``01_sdr`` or ``01``)."""
    found = sorted(p for p in BOOK.glob("*.ipynb") if CHAPTER_RE.match(p.name))
    if names:
        stems = {p.stem for p in found}
        # a full stem names that chapter only (07_sae is not 07_sae_scaling); a prefix (07) all
        found = [p for p in found if any(p.stem == n or (n not in stems and p.stem.startswith(n + "_"))
                                         for n in names)]
        if not found:
            raise SystemExit(f"no chapter matches {names}")
    return found


def toc_chapters(toc: Path | None = None) -> list[str]:
    """The chapter stems (``01_sdr``) that ``_toc.yml`` lists, in book order: the chapters
    whose records must exist and agree."""
    import yaml

    data = yaml.safe_load((toc or ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    stems = [Path(f).name for f in files if Path(f).parent.name == "book"]
    return [s for s in stems if CHAPTER_RE.match(s + ".ipynb")]


def is_checked(cell) -> bool:
    """Whether a cell is the nbval-checked scorecard cell."""
    return cell.cell_type == "code" and CHECK_MARK in cell.source


def scorecard_cell_problems(nb) -> list[str]:
    """What is wrong with a chapter's scorecard cells: there must be exactly one checked
    cell, it must be the last code cell, and it must call ``card.finish()``."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    checked = [i for i, c in enumerate(code) if is_checked(c)]
    if len(checked) != 1:
        return [f"{len(checked)} cells marked {CHECK_MARK!r}; a chapter has exactly one"]
    problems = []
    if checked[0] != len(code) - 1:
        problems.append("the checked scorecard cell is not the last code cell")
    if "card.finish()" not in code[checked[0]].source:
        problems.append("the checked scorecard cell does not call card.finish()")
    return problems


def strip(nb):
    """Remove every output and execution count except the scorecard cell's; drop
    execution metadata that papermill or Jupyter add. Returns the notebook (mutated)."""
    for cell in nb.cells:
        meta = cell.get("metadata", {})
        for key in ("execution", "papermill", "collapsed", "scrolled"):
            meta.pop(key, None)
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            # keep only the text the scorecard printed, not transient display data
            cell.outputs = [o for o in cell.outputs if o.get("output_type") == "stream"
                            and o.get("name") == "stdout"]
        else:
            cell.outputs = []
            cell.execution_count = None
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    return nb


def interactive_cells(nb) -> list[int]:
    """Indices of the code cells tagged :data:`INTERACTIVE_TAG`."""
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and INTERACTIVE_TAG in c.get("metadata", {}).get("tags", [])]


def execute(src: Path, dst: Path, *, scale: str | None = None, seed: int | None = None,
            env: dict | None = None, timeout: int | None = 900) -> float:
    """Execute ``src`` with papermill into ``dst`` (working directory: ``book/``), passing
    ``SCALE``/``SEED`` only when given; ``timeout`` is per cell (None: none). Returns wall seconds.

    Cells tagged :data:`INTERACTIVE_TAG` are not executed: they go to papermill as raw cells and
    come back in ``dst`` as the code cells they were, without outputs. (A widget control executed
    without a front end once left a smoke run's kernel waiting until the cell timeout.)"""
    import papermill as pm

    nb = read(src)
    skipped = [nb.cells[i].id for i in interactive_cells(nb)]   # by id: papermill inserts cells
    for i in interactive_cells(nb):
        nb.cells[i] = nbformat.v4.new_raw_cell(nb.cells[i].source, metadata=nb.cells[i].metadata, id=nb.cells[i].id)

    params = {}
    if scale is not None:
        params["SCALE"] = scale
    if seed is not None:
        params["SEED"] = seed
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        start = time.perf_counter()
        dst.parent.mkdir(parents=True, exist_ok=True)
        pm.execute_notebook(nb, str(dst), parameters=params, cwd=str(BOOK),
                            kernel_name="python3", progress_bar=False,
                            execution_timeout=timeout)
        seconds = time.perf_counter() - start
        if skipped:
            done = read(dst)
            for cell_id in skipped:
                j = next(k for k, c in enumerate(done.cells) if c.get("id") == cell_id)
                raw = done.cells[j]
                done.cells[j] = nbformat.v4.new_code_cell(raw.source, metadata=raw.metadata, id=raw.id)
            write(done, dst)
        return seconds
    finally:
        os.environ.clear()
        os.environ.update(old)


def read(path: Path):
    return nbformat.read(str(path), as_version=4)


def write(nb, path: Path) -> None:
    nbformat.write(nb, str(path))
