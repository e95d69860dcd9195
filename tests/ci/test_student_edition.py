"""ci/student_edition.py: the student edition hides every solution, leaves every exercise to
write (raising NotImplementedError until written), follows each with its check, and runs up to
the first exercise."""
import ast
import sys

import nbformat
import pytest

from sparsity_core import paths
from sparsity_core.exercises import EXERCISES

sys.path.insert(0, str(paths.repo_root() / "ci"))
import nbtools  # noqa: E402
import student_edition  # noqa: E402

CHAPTERS = [p.stem for p in nbtools.chapters(None)]


def _tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


@pytest.mark.parametrize("stem", CHAPTERS)
def test_no_solution_survives_and_every_exercise_is_followed_by_its_check(stem):
    book = nbtools.read(nbtools.BOOK / f"{stem}.ipynb")
    nb = student_edition.student_notebook(book, stem, set(EXERCISES))
    assert not any("solution" in _tags(c) for c in nb.cells)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    code = [c for c in nb.cells if c.cell_type == "code"]
    n_exercises = sum("exercise" in _tags(c) for c in book.cells)
    assert sum("check" in _tags(c) for c in code) == n_exercises > 0
    for i, cell in enumerate(code):
        if "exercise" not in _tags(cell):
            continue
        assert "NotImplementedError" in cell.source
        assert not any(line.strip() == "..." for line in cell.source.splitlines())
        check = code[i + 1]
        assert "check" in _tags(check)
        names = student_edition.defined_functions(cell.source)
        # the check cell defines none of what the reader writes (no solution left in it)
        assert not set(student_edition.defined_functions(check.source)) & set(names)
        for name in names:
            if (stem, name) in EXERCISES:
                assert f"check_{name}({name})" in check.source
        ast.parse(check.source)


def test_the_stub_raises_until_written():
    src = "def f(x):\n    # fill in\n    ...\n"
    ns = {}
    exec(student_edition.stub_source(src), ns)
    with pytest.raises(NotImplementedError, match="f: write this exercise"):
        ns["f"](1)


def test_a_package_check_replaces_the_solutions_own_asserts_only_where_it_exists():
    stub = "def f(x):\n    ...\n"
    solution = "def f(x):\n    return 2 * x\n\nassert f(2) == 4\nprint('ok')\n"
    with_check = student_edition.check_source("99_toy", stub, solution, {("99_toy", "f")})
    assert "check_f(f)" in with_check and "assert f(2)" not in with_check and "return 2 * x" not in with_check
    without = student_edition.check_source("99_toy", stub, solution, set())
    assert "assert f(2) == 4" in without and "print('ok')" in without and "return 2 * x" not in without


def test_the_student_edition_runs_up_to_the_first_exercise(tmp_path):
    import papermill as pm

    stem = "06_sparse_attention_nsa"          # the chapter with the shortest smoke run
    assert student_edition.main([stem, "--out", str(tmp_path)]) == 0
    src = tmp_path / "book" / f"{stem}.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(src), str(tmp_path / "run.ipynb"), parameters={"SCALE": "smoke"},
                            cwd=str(nbtools.BOOK), kernel_name="python3", progress_bar=False)
    assert err.value.ename in ("NotImplementedError", "CheckFailed")
    ran = nbformat.read(str(tmp_path / "run.ipynb"), as_version=4)
    code = [c for c in ran.cells if c.cell_type == "code"]
    first_check = next(i for i, c in enumerate(code) if "check" in _tags(c))
    failed = next(i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.outputs))
    assert failed == first_check
    assert all(c.execution_count is not None for c in code[:first_check])
