"""The notebook plumbing: stripping keeps exactly the scorecard cell, and nbval catches a
hand-edited scorecard output (the mechanism that keeps committed results honest)."""
import copy
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from sparsity_core import paths

sys.path.insert(0, str(paths.repo_root() / "ci"))
import nbtools  # noqa: E402


def _toy_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Toy"),
        nbformat.v4.new_code_cell("x = sum(range(10))\nprint('work', x)"),
        nbformat.v4.new_code_cell(f"{nbtools.CHECK_MARK}\nprint('  pass  toy-claim  ' + str(x / 9))"),
    ]
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    return nb


@pytest.fixture(scope="module")
def executed():
    return _toy_notebook()


def test_strip_keeps_only_the_checked_cell(executed):
    nb = nbtools.strip(copy.deepcopy(executed))
    work, card = nb.cells[1], nb.cells[2]
    assert work.outputs == [] and work.execution_count is None
    assert card.execution_count is not None
    assert card.outputs[0]["text"] == "  pass  toy-claim  5.0\n"
    assert nbtools.strip(copy.deepcopy(nb)) == nb  # idempotent


def _nbval(path):
    return subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider",
                           "-q", str(path)], capture_output=True, text=True, cwd=path.parent)


def test_nbval_passes_fresh_and_fails_hand_edited(executed, tmp_path):
    nb = nbtools.strip(copy.deepcopy(executed))
    good = tmp_path / "good.ipynb"
    nbformat.write(nb, str(good))
    assert _nbval(good).returncode == 0

    edited = copy.deepcopy(nb)
    edited.cells[2].outputs[0]["text"] = "  pass  toy-claim  5.1\n"
    bad = tmp_path / "bad.ipynb"
    nbformat.write(edited, str(bad))
    r = _nbval(bad)
    assert r.returncode != 0, r.stdout
