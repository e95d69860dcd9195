"""Every checked exercise: the chapter's hidden solution passes its check, the exercise's stub
fails it with a clear message, and the check itself tells differences apart.

The solution's function is taken from the notebook (its ``def``, run with the imports of the
chapter's code cells), so the check compares the book's own solution with the package.
"""
import ast

import nbformat
import numpy as np
import pytest
import torch

from sparsity_core import paths
from sparsity_core.exercises import EXERCISES, Case, CheckFailed, Exercise, check, describe_difference, run_check

BOOK = paths.repo_root() / "book"
MIN_CHECKED_PER_CHAPTER = 1


def _tags(cell) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


def exercise_cells(chapter: str) -> dict[str, tuple]:
    """function name -> (stub cell, solution cell, notebook) of each exercise of ``chapter``."""
    nb = nbformat.read(str(BOOK / f"{chapter}.ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    found = {}
    for i, cell in enumerate(code):
        if "exercise" in _tags(cell):
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef):
                    found[node.name] = (cell, code[i + 1], nb)
    return found


def chapter_imports(nb) -> dict:
    """A namespace holding what the chapter's code cells import (top-level import statements)."""
    ns: dict = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(body=imports, type_ignores=[]), "<imports>", "exec"), ns)
    return ns


def function_from(cell, name: str, ns: dict, stub: bool = False):
    """``name`` as ``cell`` defines it (a stub's ``...`` body made to raise NotImplementedError)."""
    tree = ast.parse(cell.source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    if stub:
        node.body = [ast.parse("raise NotImplementedError('exercise stub')").body[0]]
    ns = dict(ns)
    exec(compile(ast.fix_missing_locations(ast.Module(body=[node], type_ignores=[])), f"<{name}>", "exec"), ns)
    return ns[name]


CHECKED = sorted(EXERCISES)


@pytest.mark.parametrize("key", CHECKED, ids=[f"{c}:{n}" for c, n in CHECKED])
def test_the_solution_passes_and_the_stub_fails(key):
    chapter, name = key
    cells = exercise_cells(chapter)
    assert name in cells, f"{chapter} has no exercise defining {name}()"
    stub, solution, nb = cells[name]
    ns = chapter_imports(nb)
    assert "matches the package" in run_check(EXERCISES[key], function_from(solution, name, ns), quiet=True)
    with pytest.raises(CheckFailed, match="not written yet"):
        run_check(EXERCISES[key], function_from(stub, name, ns, stub=True), quiet=True)


@pytest.mark.parametrize("stem", sorted(p.stem for p in BOOK.glob("[0-9][0-9]_*.ipynb")))
def test_every_chapter_has_a_checked_exercise(stem):
    assert sum(ch == stem for ch, _ in EXERCISES) >= MIN_CHECKED_PER_CHAPTER


def test_every_exercise_has_a_named_check_function():
    import sparsity_core.exercises as ex

    for _, name in EXERCISES:
        assert callable(getattr(ex, f"check_{name}", None)), f"no check_{name}"


def _toy():
    return Exercise(name="double", chapter="99_toy", task="twice x", reference=lambda x: 2 * x,
                    cases=lambda: [Case("a 2 x 3 tensor", (torch.arange(6.0).reshape(2, 3),))])


def test_a_correct_function_passes_and_says_so(capsys):
    assert "matches the package on all 1 cases" in run_check(_toy(), lambda x: x + x)
    assert "✓ double" in capsys.readouterr().out


@pytest.mark.parametrize("fn, words", [
    (lambda x: x * 3, "5 of 6 entries differ; the first at index (0, 1): yours 3.0, expected 2.0"),
    (lambda x: (2 * x)[:, :2], "shape (2, 2), expected (2, 3)"),
    (lambda x: (2 * x).numpy(), "expected a torch tensor"),
    (lambda x: None, "returns nothing yet"),
    (lambda x: 1 / 0, "raised ZeroDivisionError"),
])
def test_a_wrong_function_fails_with_what_differs(fn, words):
    with pytest.raises(CheckFailed, match="double") as err:
        run_check(_toy(), fn, quiet=True)
    assert words in str(err.value)


def test_the_check_hands_each_side_its_own_copy_of_the_inputs():
    def spoil(x):
        out = 2 * x
        x.zero_()          # changes the student's copy only
        return out

    assert run_check(_toy(), spoil, quiet=True)


def test_describe_difference_covers_the_output_kinds():
    assert describe_difference(np.array([1, 2]), np.array([1, 2])) is None
    assert "expected integers" in describe_difference(np.array([1.0, 2.0]), np.array([1, 2]))
    assert "dtype torch.int64, expected torch.bool" in describe_difference(torch.tensor([1]), torch.tensor([True]))
    assert describe_difference((1, 2.0), (1, 2.0 + 1e-9)) is None
    assert "item 1 of the output is 2.5" in describe_difference((1, 2.5), (1, 2.0))
    assert "keys ['a'], expected ['a', 'b']" in describe_difference({"a": 1}, {"a": 1, "b": 2})
    assert describe_difference(True, True) is None and "expected False" in describe_difference(True, False)
    assert describe_difference(3.0, 3) is None and "expected 4" in describe_difference(3, 4)
    assert describe_difference(float("nan"), float("nan")) is None
    assert describe_difference(None, None) is None and "expected None" in describe_difference(2, None)
    assert "returns nothing yet" in describe_difference(None, 2)


def test_check_by_name_and_unknown_names():
    with pytest.raises(KeyError, match="no checked exercise"):
        check("no_such_function", lambda: None)
