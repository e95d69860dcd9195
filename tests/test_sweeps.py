"""Seed-sweep records: aggregation on hand-made records, validation, the staleness rule,
and every committed sweep record parses."""
import json
import math
import shutil
from pathlib import Path

import pytest

from sparsity_core import paths, sweeps


def _record(chapter, seed, claims):
    return {"chapter": chapter, "stamp": {"seed": seed},
            "claims": [{"id": cid, "status": status, "measured": value} for cid, status, value in claims]}


def _tasks(*seeds, failed=()):
    return {s: {"ok": s not in failed, "seconds": 1.0, "peak_mb": 10.0, "error": "boom" if s in failed else ""}
            for s in seeds}


def test_aggregate_counts_passes_and_summarises_measured():
    records = {1: _record("ch", 1, [("a", "pass", 1.0), ("b", "not_reproduced", 10.0)]),
               2: _record("ch", 2, [("a", "pass", 2.0), ("b", "pass", 20.0)]),
               3: _record("ch", 3, [("a", "fail", 6.0), ("b", "not_reproduced", None)])}
    out = sweeps.aggregate("ch", "default", [1, 2, 3], "h", records, _tasks(1, 2, 3), "today")
    assert tuple(out) == sweeps.SWEEP_FIELDS
    a, b = out["claims"]["a"], out["claims"]["b"]
    assert a["statuses"] == {"1": "pass", "2": "pass", "3": "fail"} and a["passes"] == 2 and a["runs"] == 3
    assert a["mean"] == 3.0 and math.isclose(a["std"], math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))
    assert (a["min"], a["max"]) == (1.0, 6.0)
    assert b["passes"] == 1 and b["mean"] == 15.0 and b["std"] == pytest.approx(math.sqrt(50))  # None skipped
    sweeps.validate_sweep(json.loads(json.dumps(out)))


def test_a_failed_seed_is_missing_never_dropped():
    records = {1: _record("ch", 1, [("a", "pass", 1.0)]), 2: None}
    out = sweeps.aggregate("ch", "default", [1, 2], "h", records, _tasks(1, 2, failed=(2,)), "today")
    a = out["claims"]["a"]
    assert a["statuses"] == {"1": "pass", "2": sweeps.MISSING} and a["runs"] == 1 and a["passes"] == 1
    assert a["std"] == 0.0 and out["tasks"]["2"]["ok"] is False and out["tasks"]["2"]["error"] == "boom"
    assert sweeps.holds_text(out, "a", "h") == "holds on 1 of 2 seeds (1 missing)"


def test_a_task_that_wrote_no_record_is_failed():
    out = sweeps.aggregate("ch", "default", [1, 2], "h", {1: _record("ch", 1, [("a", "pass", 1.0)])},
                           _tasks(1, 2), "today")
    assert out["tasks"]["2"]["ok"] is False and "no results record" in out["tasks"]["2"]["error"]


def test_aggregate_rejects_another_chapters_record_and_duplicate_seeds():
    with pytest.raises(ValueError, match="chapter"):
        sweeps.aggregate("ch", "default", [1], "h", {1: _record("other", 1, [])}, _tasks(1), "t")
    with pytest.raises(ValueError, match="distinct"):
        sweeps.aggregate("ch", "default", [1, 1], "h", {}, {}, "t")


def _valid():
    return sweeps.aggregate("ch", "default", [1, 2], "h",
                            {1: _record("ch", 1, [("a", "pass", 1.0)]), 2: _record("ch", 2, [("a", "fail", 2.0)])},
                            _tasks(1, 2), "t")


@pytest.mark.parametrize("corrupt, match", [
    (lambda r: r.pop("tasks"), "fields"),
    (lambda r: r.update(seeds=[1, 1]), "distinct"),
    (lambda r: r["claims"]["a"].update(passes=2), "disagree"),
    (lambda r: r["claims"]["a"]["statuses"].update({"2": "great"}), "unknown statuses"),
    (lambda r: r["claims"]["a"]["statuses"].pop("2"), "one status per seed"),
    (lambda r: r["tasks"]["2"].update(ok=False), "task failed"),
])
def test_validate_rejects_inconsistent_records(corrupt, match):
    record = _valid()
    corrupt(record)
    with pytest.raises(ValueError, match=match):
        sweeps.validate_sweep(record)


def test_holds_text_marks_a_stale_sweep():
    out = _valid()
    assert sweeps.holds_text(out, "a", "h") == "holds on 1 of 2 seeds; measured 1.5 ± 0.71"
    assert sweeps.holds_text(out, "a", "other").endswith("(stale: sources changed since the sweep)")
    assert sweeps.holds_text(None, "a", "h") == "" and sweeps.holds_text(out, "zz", "h") == ""


@pytest.fixture()
def mini_repo(tmp_path):
    """A copy of the package, one chapter notebook and the claims CSV: a repo to edit."""
    shutil.copytree(paths.repo_root() / "sparsity_core", tmp_path / "sparsity_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "book").mkdir()
    shutil.copy(paths.repo_root() / "book" / "01_sdr.ipynb", tmp_path / "book")
    (tmp_path / "data").mkdir()
    shutil.copy(paths.paper_claims_csv(), tmp_path / "data" / "paper_claims.csv")
    return tmp_path


def _edit_notebook(path: Path, cell_type: str, change):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == cell_type)
    change(cell)
    path.write_text(json.dumps(nb), encoding="utf-8")


def test_code_digest_ignores_docstrings_comments_and_layout_but_not_code():
    a = '"""Module."""\nimport math\n\n\ndef f(x):\n    """Doc."""\n    return math.sqrt(x)  # root\n\n\nclass C:\n    """C."""\n'
    b = 'import math\ndef f(x):\n    """Other words."""\n\n    return math.sqrt(\n        x)\nclass C:\n    pass\n'
    assert sweeps.code_digest(a) == sweeps.code_digest(b)
    for changed in (a.replace("sqrt(x)", "sqrt(x + 0)"), a.replace("return", "x = 1\n    return"),
                    a + "LABEL = 'Doc.'\n"):
        assert sweeps.code_digest(changed) != sweeps.code_digest(a)


def test_source_hash_follows_code_package_and_claims_not_prose_or_outputs(mini_repo):
    nb = mini_repo / "book" / "01_sdr.ipynb"
    base = sweeps.source_hash("01_sdr", mini_repo)
    assert base == sweeps.source_hash("01_sdr", mini_repo)
    _edit_notebook(nb, "markdown", lambda c: c.update(source="new prose"))
    _edit_notebook(nb, "code", lambda c: c.update(outputs=[], execution_count=None))
    assert sweeps.source_hash("01_sdr", mini_repo) == base              # prose and outputs: still current
    csv_path = mini_repo / "data" / "paper_claims.csv"
    lines = csv_path.read_text(encoding="utf-8").splitlines(keepends=True)
    other = next(i for i, line in enumerate(lines[1:], 1) if ",01_sdr," not in line)
    csv_path.write_text("".join(lines[:other] + [lines[other].replace(",", ", ", 1)] + lines[other + 1:]),
                        encoding="utf-8")
    assert sweeps.source_hash("01_sdr", mini_repo) == base              # another chapter's row
    masks = mini_repo / "sparsity_core" / "masks.py"
    masks.write_text(masks.read_text() + "\n# edit\n")
    assert sweeps.source_hash("01_sdr", mini_repo) == base              # a module the chapter never loads
    exact = mini_repo / "sparsity_core" / "sdr" / "exact.py"
    text = exact.read_text()
    first_def = text.index('"""', text.index("\ndef ")) + 3
    exact.write_text(text[:first_def] + "Reworded. " + text[first_def:] + "\n# a comment\n")
    assert sweeps.source_hash("01_sdr", mini_repo) == base              # a docstring, a comment: still current
    exact.write_text(exact.read_text() + "\n_EDIT = 1\n")
    changed_package = sweeps.source_hash("01_sdr", mini_repo)
    assert changed_package != base
    _edit_notebook(nb, "code", lambda c: c.update(source=c["source"] + ["\n# edit"]))
    assert sweeps.source_hash("01_sdr", mini_repo) != changed_package
    with pytest.raises(FileNotFoundError):
        sweeps.source_hash("99_none", mini_repo)


def test_package_closure_follows_relative_lazy_and_parent_imports(tmp_path):
    pkg = tmp_path / "sparsity_core"
    files = {
        "__init__.py": "", "checks.py": "", "unused.py": "import sparsity_core.checks",
        "a/__init__.py": "from .b import f", "a/b.py": "from .. import checks\ndef f():\n    from ..c import g",
        "c.py": "import math", "d/__init__.py": "", "d/e.py": "from . import f",
        "d/f.py": "",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    got = sweeps.package_closure("%matplotlib inline\nfrom sparsity_core import a\nimport sparsity_core.d.e", pkg)
    assert [p.relative_to(pkg).as_posix() for p in got] == [
        "__init__.py", "a/__init__.py", "a/b.py", "c.py", "checks.py", "d/__init__.py", "d/e.py", "d/f.py"]
    assert len(sweeps.package_closure("def broken(:", pkg)) == len(files)     # unparsable: everything


def test_every_committed_sweep_record_parses_and_names_a_chapter():
    files = sorted(sweeps.sweeps_dir().glob("*.json"))
    assert files, "no sweep record committed in data/sweeps"
    for path in files:
        record = sweeps.load_sweep(path.stem)
        assert record["chapter"] == path.stem
        assert (paths.repo_root() / "book" / f"{path.stem}.ipynb").is_file(), f"{path.name}: no such chapter"
