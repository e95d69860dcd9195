"""Seed sweeps: how often each claim holds across seeds, and whether that count is current.

A chapter's scorecard is one run at seed 0. ``ci/sweep.py`` re-runs chapters at other
seeds (as Dask tasks) and writes one **sweep record** per chapter, ``data/sweeps/<chapter>.json``:

.. code-block:: text

    {"chapter": "01_sdr", "scale": "default", "seeds": [1, 2, 3],
     "source_hash": "<sha256 of the sources the runs executed>", "date": "...",
     "tasks": {"1": {"ok": true, "seconds": 41.2, "peak_mb": 812.0, "error": ""}, ...},
     "claims": {"sdr-capacity": {"statuses": {"1": "pass", "2": "pass", "3": "pass"},
                                 "passes": 3, "runs": 3, "mean": ..., "std": ...,
                                 "min": ..., "max": ...}, ...}}

A seed whose task failed (an error, a time-out, a memory kill) has ``ok: false`` and its
reason; its claims are counted as ``"missing"`` in ``statuses``, never dropped, so a claim
reads "holds on 2 of 3 seeds, 1 missing".

**Staleness.** :func:`source_hash` digests what decides a chapter's numbers: the source of
the notebook's code cells (not its outputs or prose), the code of the ``.py`` files of
``sparsity_core`` that the chapter imports, directly or through other modules
(:func:`package_closure`, read from the import statements, function-level imports included),
and the chapter's rows of ``data/paper_claims.csv``. A file's code is its syntax tree without
docstrings (:func:`code_digest`): a docstring, a comment or a line break never changes a
number, so editing one leaves sweeps current; any other change, however small, stales them.
A sweep record whose hash differs from today's sources is *stale*: the report and the
scorecards still show its counts, marked stale, until the sweep is re-run.
"""
from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path

from . import paths
from .claims import STATUSES

__all__ = ["SWEEP_FIELDS", "MISSING", "package_closure", "code_digest", "source_hash", "aggregate", "validate_sweep", "load_sweep",
           "sweeps_dir", "sweep_path", "holds_text"]

#: Top-level fields of a sweep record.
SWEEP_FIELDS = ("chapter", "scale", "seeds", "source_hash", "date", "tasks", "claims")
#: The status of a claim at a seed whose run produced no record.
MISSING = "missing"


def sweeps_dir() -> Path:
    """``data/sweeps``: the committed sweep records."""
    return paths.data_dir() / "sweeps"


def sweep_path(chapter: str) -> Path:
    """``data/sweeps/<chapter>.json``."""
    return sweeps_dir() / f"{chapter}.json"


def _notebook_code(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    return "\n# <cell>\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                               for c in cells)


def _claim_rows(csv_path: Path, chapter: str) -> str:
    text = csv_path.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    col = header.index("chapter")
    return "\n".join(",".join(r) for r in body if r and r[col] == chapter)


def _module_file(package: Path, dotted: str) -> Path | None:
    """The file of ``sparsity_core.a.b`` under ``package`` (``a/b.py`` or ``a/b/__init__.py``)."""
    parts = dotted.split(".")[1:]
    base = package.joinpath(*parts) if parts else package
    for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _imported_modules(tree: ast.AST, current: str | None, is_package: bool, top: str) -> set[str]:
    """Dotted names under ``top`` that ``tree`` imports (each ``from m import x`` also names
    ``m.x``, which counts when ``x`` is a submodule)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if current is None:
                    continue
                parts = current.split(".") if is_package else current.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == top or m.startswith(top + ".")}


def package_closure(code: str, package: Path) -> list[Path]:
    """The ``.py`` files of ``package`` that ``code`` loads: its imports, their imports, and
    every parent package's ``__init__.py``, in path order.

    Code that does not parse (cell magics aside) yields every file of the package.
    """
    top = package.name
    source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return sorted(package.rglob("*.py"))
    todo, seen = list(_imported_modules(tree, None, False, top)), set()
    files: set[Path] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(package, name)
        if path is None:
            continue
        files.add(path)
        parents = name.split(".")
        todo += [".".join(parents[:i]) for i in range(1, len(parents))]
        sub = ast.parse(path.read_text(encoding="utf-8"))
        todo += sorted(_imported_modules(sub, name, path.name == "__init__.py", top) - seen)
    return sorted(files)


def code_digest(source: str) -> bytes:
    """What of a module's source can change what it computes: its syntax tree (``ast.dump``,
    no line numbers) with every module, class and function docstring removed; comments and
    layout are not in the tree. A docstring-only edit gives the same bytes."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode("utf-8")


def source_hash(chapter: str, root: Path | None = None) -> str:
    """sha256 of the chapter's code cells, the code of the package files they load
    (:func:`code_digest`) and the chapter's CSV rows.

    Args:
        chapter: a notebook stem under ``book/`` (``01_sdr``).
        root: the repository root (default: :func:`sparsity_core.paths.repo_root`).
    """
    root = Path(root) if root is not None else paths.repo_root()
    notebook = root / "book" / f"{chapter}.ipynb"
    if not notebook.is_file():
        raise FileNotFoundError(f"no chapter notebook {notebook}")
    code = _notebook_code(notebook)
    h = hashlib.sha256()
    h.update(b"notebook\0" + code.encode("utf-8"))
    for py in package_closure(code, root / "sparsity_core"):
        h.update(b"\0code\0" + py.relative_to(root).as_posix().encode() + b"\0"
                 + code_digest(py.read_text(encoding="utf-8")))
    h.update(b"\0claims\0" + _claim_rows(root / "data" / "paper_claims.csv", chapter).encode("utf-8"))
    return h.hexdigest()


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(var)


def aggregate(chapter: str, scale: str, seeds: list[int], source_hash: str,
              records: Mapping[int, dict | None], tasks: Mapping[int, dict], date: str) -> dict:
    """The sweep record of ``chapter`` from its per-seed results records.

    Args:
        chapter, scale: what was run.
        seeds: every seed asked for, in order (a seed without a record counts as missing).
        source_hash: :func:`source_hash` of the sources the runs executed.
        records: ``seed -> results record`` (as :meth:`~sparsity_core.claims.Scorecard.finish`
            writes it), or ``None`` for a seed whose run failed.
        tasks: ``seed -> {"ok", "seconds", "peak_mb", "error"}`` from the task runner.
        date: when the sweep ran (UTC, as the run stamps).

    Returns:
        A dict with :data:`SWEEP_FIELDS`; per claim ``statuses`` (seed -> status or
        :data:`MISSING`), ``passes``, ``runs`` (seeds with a record), and the sample
        ``mean``, ``std`` (n - 1), ``min``, ``max`` of ``measured`` over those runs
        (``None`` when no run measured a number).
    """
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"seeds must be distinct and non-empty (got {seeds})")
    ids: list[str] = []
    for seed in seeds:
        record = records.get(seed)
        if record is None:
            continue
        if record.get("chapter") != chapter:
            raise ValueError(f"seed {seed}: record is for chapter {record.get('chapter')!r}, not {chapter!r}")
        for c in record["claims"]:
            if c["id"] not in ids:
                ids.append(c["id"])
    claims = {}
    for cid in ids:
        statuses, values = {}, []
        for seed in seeds:
            record = records.get(seed)
            row = None if record is None else next((c for c in record["claims"] if c["id"] == cid), None)
            statuses[str(seed)] = MISSING if row is None else row["status"]
            if row is not None and row.get("measured") is not None:
                values.append(float(row["measured"]))
        entry = {"statuses": statuses, "passes": sum(s == "pass" for s in statuses.values()),
                 "runs": sum(s != MISSING for s in statuses.values())}
        if values:
            mean, std = _mean_std(values)
            entry.update(mean=mean, std=std, min=min(values), max=max(values))
        else:
            entry.update(mean=None, std=None, min=None, max=None)
        claims[cid] = entry
    task_rows = {}
    for seed in seeds:
        t = dict(tasks.get(seed) or {"ok": False, "seconds": None, "peak_mb": None, "error": "no task result"})
        if records.get(seed) is None and t.get("ok"):
            t = {**t, "ok": False, "error": "the run wrote no results record"}
        task_rows[str(seed)] = {k: t.get(k) for k in ("ok", "seconds", "peak_mb", "error")}
    return {"chapter": chapter, "scale": scale, "seeds": seeds, "source_hash": source_hash, "date": date,
            "tasks": task_rows, "claims": claims}


def validate_sweep(record: object, where: str = "sweep record") -> dict:
    """Raise ``ValueError`` naming ``where`` unless ``record`` is a well-formed sweep record."""
    if not isinstance(record, dict) or tuple(record) != SWEEP_FIELDS:
        got = list(record) if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"{where}: fields must be {list(SWEEP_FIELDS)} in that order (got {got})")
    seeds = record["seeds"]
    if not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds) \
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"{where}: seeds must be a non-empty list of distinct ints (got {seeds!r})")
    keys = [str(s) for s in seeds]
    if sorted(record["tasks"]) != sorted(keys):
        raise ValueError(f"{where}: tasks must have one entry per seed {keys} (got {sorted(record['tasks'])})")
    for cid, c in record["claims"].items():
        if sorted(c.get("statuses", {})) != sorted(keys):
            raise ValueError(f"{where}: claim {cid} must have one status per seed {keys}")
        bad = [s for s in c["statuses"].values() if s not in STATUSES + (MISSING,)]
        if bad:
            raise ValueError(f"{where}: claim {cid} has unknown statuses {bad}")
        if c["passes"] != sum(s == "pass" for s in c["statuses"].values()) \
                or c["runs"] != sum(s != MISSING for s in c["statuses"].values()):
            raise ValueError(f"{where}: claim {cid}: passes/runs disagree with its statuses")
        for seed, status in c["statuses"].items():
            if status != MISSING and not record["tasks"][seed]["ok"]:
                raise ValueError(f"{where}: claim {cid} has a status at seed {seed}, whose task failed")
    return record


def load_sweep(chapter: str, directory: Path | None = None) -> dict | None:
    """The validated sweep record of ``chapter``, or ``None`` if none is committed."""
    path = (Path(directory) if directory is not None else sweeps_dir()) / f"{chapter}.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    validate_sweep(record, str(path))
    if record["chapter"] != chapter:
        raise ValueError(f"{path} is the sweep of {record['chapter']!r}, not {chapter!r}")
    return record


def holds_text(sweep: dict | None, claim_id: str, current_hash: str | None) -> str:
    """``"holds on k of n seeds"`` for one claim (``""`` without a sweep), with the seeds that
    produced no record, and ``(stale)`` when ``current_hash`` differs from the sweep's."""
    if sweep is None or claim_id not in sweep["claims"]:
        return ""
    c = sweep["claims"][claim_id]
    n = len(sweep["seeds"])
    text = f"holds on {c['passes']} of {n} seeds"
    if c["runs"] < n:
        text += f" ({n - c['runs']} missing)"
    if c.get("std") is not None and c["runs"] > 1:
        text += f"; measured {c['mean']:.4g} ± {c['std']:.2g}"
    if current_hash is not None and current_hash != sweep["source_hash"]:
        text += " (stale: sources changed since the sweep)"
    return text
