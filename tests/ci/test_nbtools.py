"""The notebook plumbing: stripping keeps exactly the scorecard cell, and nbval catches a
hand-edited scorecard output (the mechanism that keeps committed results honest)."""
import copy
import re
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


def _chapter_like(n_checked, *, last=True, finish=True):
    nb = nbformat.v4.new_notebook()
    source = f"{nbtools.CHECK_MARK}\n" + ("record = card.finish()" if finish else "print(1)")
    nb.cells = [nbformat.v4.new_code_cell("x = 1")] + [nbformat.v4.new_code_cell(source) for _ in range(n_checked)]
    if not last:
        nb.cells.append(nbformat.v4.new_code_cell("y = 2"))
    return nb


def test_exactly_one_scorecard_cell():
    assert nbtools.scorecard_cell_problems(_chapter_like(1)) == []
    assert "2 cells marked" in nbtools.scorecard_cell_problems(_chapter_like(2))[0]
    assert "0 cells marked" in nbtools.scorecard_cell_problems(_chapter_like(0))[0]
    assert "not the last" in nbtools.scorecard_cell_problems(_chapter_like(1, last=False))[0]
    assert "card.finish()" in nbtools.scorecard_cell_problems(_chapter_like(1, finish=False))[0]


def test_strip_check_rejects_a_chapter_with_two_scorecard_cells(tmp_path):
    path = tmp_path / "99_toy.ipynb"
    nbformat.write(_chapter_like(2), str(path))
    r = subprocess.run([sys.executable, str(paths.repo_root() / "ci" / "strip_outputs.py"), "--check", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "2 cells marked" in r.stdout


def test_every_chapter_has_one_scorecard_cell_and_is_in_the_toc():
    toc = nbtools.toc_chapters()
    found = [p.stem for p in nbtools.chapters()]
    assert sorted(toc) == sorted(found), "every chapter notebook is listed in _toc.yml and vice versa"
    for path in nbtools.chapters():
        assert nbtools.scorecard_cell_problems(nbtools.read(path)) == [], path.name


def test_no_chapter_writes_a_status_or_a_reason():
    # statuses and reasons come from data/paper_claims.csv, never from a notebook
    forbidden = re.compile(r"not_reproduced_reason|repro_rtol|repro_atol|\breason\s*=|status\s*=\s*[\"']"
                           r"|expected_reason")
    for path in nbtools.chapters():
        for cell in nbtools.read(path).cells:
            if cell.cell_type == "code":
                assert not forbidden.search(cell.source), (path.name, forbidden.search(cell.source).group(0))


def test_toc_chapters_reads_nested_parts(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: book/intro\nparts:\n  - caption: A\n    chapters:\n"
                   "      - file: book/01_sdr\n      - file: book/reproducibility\n"
                   "  - caption: B\n    chapters:\n      - file: book/07_sae\n        sections:\n"
                   "          - file: book/07_sae_scaling\n")
    assert nbtools.toc_chapters(toc) == ["01_sdr", "07_sae", "07_sae_scaling"]


def test_a_full_stem_names_one_chapter_and_a_prefix_all_of_its_parts():
    assert [p.stem for p in nbtools.chapters(["07_sae"])] == ["07_sae"]
    assert [p.stem for p in nbtools.chapters(["07"])] == ["07_sae", "07_sae_lm", "07_sae_scaling"]
    assert [p.stem for p in nbtools.chapters(["01"])] == ["01_sdr"]
    assert [p.stem for p in nbtools.chapters(["02"])] == ["02_pruning", "02_pruning_lottery", "02_pruning_random"]
    assert [p.stem for p in nbtools.chapters(["05"])] == ["05_moe", "05_moe_lm", "05_moe_upcycling"]


def test_interactive_cells_are_not_executed_and_come_back_as_code(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("SCALE = 'default'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise RuntimeError('a widget ran')",
                                  metadata={"tags": [nbtools.INTERACTIVE_TAG, "nbval-skip"]}),
        nbformat.v4.new_code_cell("print(x + 1)"),
    ]
    src, dst = tmp_path / "toy.ipynb", tmp_path / "out" / "toy.ipynb"
    nbtools.write(nb, src)
    nbtools.execute(src, dst, scale="smoke", timeout=60)
    done = nbtools.read(dst)
    widget = next(c for c in done.cells if "a widget ran" in c.source)
    assert widget.cell_type == "code" and widget.outputs == [] and widget.id == nb.cells[2].id
    assert done.cells[-1].outputs[0]["text"] == "2\n"      # the cells after it ran
    assert [c.source for c in nbtools.strip(done).cells if c.get("id") in {c.id for c in nb.cells}] == \
        [c.source for c in nb.cells]


def test_every_widget_cell_of_the_book_is_tagged_interactive_and_skipped_by_nbval():
    for path in nbtools.chapters(None):
        for cell in nbtools.read(path).cells:
            if cell.cell_type == "code" and re.search(r"\bwidgets\.(interact|interactive)\b", cell.source):
                tags = set(cell.get("metadata", {}).get("tags", []))
                assert {nbtools.INTERACTIVE_TAG, "nbval-skip"} <= tags, (path.name, cell.source[:60])
