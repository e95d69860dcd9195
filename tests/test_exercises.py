"""Exercises and their hidden solutions cannot drift apart.

In every chapter, a code cell tagged ``exercise`` (a stub with ``...`` where the reader
writes code) is followed by a code cell tagged ``solution`` and ``hide-input``. The stub's
code lines (comments and ``...`` aside) must appear in the solution in the same order, and
the solution must check itself with ``assert``. The solutions run, asserts included,
every time the chapter runs under nbval in ``make test``.
"""
import nbformat
import pytest

from sparsity_core import paths

CHAPTERS = sorted((paths.repo_root() / "book").glob("[0-9][0-9]_*.ipynb"))
MIN_EXERCISES = 3


def _code_lines(src: str) -> list[str]:
    lines = []
    for line in src.splitlines():
        s = line.strip()
        if s and not s.startswith("#") and s != "...":
            lines.append(s)
    return lines


def _tags(cell) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


def _pairs(nb):
    code = [c for c in nb.cells if c.cell_type == "code"]
    pairs = []
    for i, cell in enumerate(code):
        if "exercise" in _tags(cell):
            assert i + 1 < len(code), "an exercise cell is the last code cell"
            pairs.append((cell, code[i + 1]))
    return pairs


def pair_problems(stub, sol) -> list[str]:
    """What is wrong with one exercise/solution pair (empty if nothing)."""
    problems = []
    if not {"solution", "hide-input"} <= _tags(sol):
        problems.append(f"cell after an exercise must be a hidden solution:\n{sol.source}")
    if "..." not in stub.source:
        problems.append(f"exercise stub has no '...' to fill in:\n{stub.source}")
    if "assert " not in sol.source:
        problems.append(f"solution does not check itself:\n{sol.source}")
    remaining = _code_lines(sol.source)
    for line in _code_lines(stub.source):
        if line not in remaining:
            problems.append(f"stub line {line!r} is not in its solution (or out of order)")
            break
        remaining = remaining[remaining.index(line) + 1:]
    return problems


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_pair_with_checked_hidden_solutions(path):
    nb = nbformat.read(str(path), as_version=4)
    pairs = _pairs(nb)
    assert len(pairs) >= MIN_EXERCISES, f"{path.stem}: {len(pairs)} exercises, want >= {MIN_EXERCISES}"
    for stub, sol in pairs:
        assert pair_problems(stub, sol) == []
    n_solutions = sum("solution" in _tags(c) for c in nb.cells)
    assert n_solutions == len(pairs), "a solution cell without an exercise stub before it"


def _cell(src, tags):
    c = nbformat.v4.new_code_cell(src)
    c.metadata["tags"] = tags
    return c


def test_drifted_or_unchecked_pairs_are_caught():
    stub = _cell("def f(x):\n    # fill in\n    ...", ["exercise"])
    good = _cell("def f(x):\n    return x\nassert f(1) == 1", ["solution", "hide-input"])
    assert pair_problems(stub, good) == []
    renamed = _cell("def g(x):\n    return x\nassert g(1) == 1", ["solution", "hide-input"])
    assert any("not in its solution" in p for p in pair_problems(stub, renamed))
    unchecked = _cell("def f(x):\n    return x", ["solution", "hide-input"])
    assert any("does not check" in p for p in pair_problems(stub, unchecked))
    visible = _cell("def f(x):\n    return x\nassert f(1) == 1", ["solution"])
    assert any("hidden" in p for p in pair_problems(stub, visible))
