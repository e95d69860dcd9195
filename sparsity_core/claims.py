"""Claims and scorecards: the machinery that turns a chapter into a reproducibility check.

A *claim* is one checkable statement from one paper. The paper's own number, where in the
paper it stands and how it was verified live in ``data/paper_claims.csv`` (one row per
claim), never in notebook code. A chapter measures each claim in its own run and records
it on a :class:`Scorecard`; the scorecard renders a table, writes
``data/results/<chapter>.json`` and raises :class:`ScorecardFailure` if any claim failed.

Statuses:
    ``pass``            the check held in this run.
    ``fail``            the check did not hold: the chapter raises.
    ``not_reproduced``  the check did not hold *and* the chapter states, before the
                        result, why it cannot hold at our scale (or why the paper's number
                        is wrong); shown as such everywhere, never counted as a pass.

Every claim the CSV lists for a chapter must be recorded: a claim cannot be dropped
silently. See ``DESIGN.md`` ("Claims and the scorecard") for the contract.
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import paths
from .bench import hardware_fingerprint

STATUSES = ("pass", "fail", "not_reproduced")
KINDS = ("value", "speed")
#: Columns of ``data/paper_claims.csv``.
CSV_COLUMNS = ("id", "chapter", "paper", "where", "statement", "paper_value",
               "paper_value_text", "paper_setting", "provenance")
#: Relative tolerance for re-measuring an exact or seeded computation between runs.
EXACT_RTOL = 1e-9


class ScorecardFailure(AssertionError):
    """Raised at the end of a chapter when at least one claim failed."""


@dataclass(frozen=True)
class PaperClaim:
    """One row of ``data/paper_claims.csv``: what the paper says, in the paper's setting.

    ``paper_value`` is the paper's number as a float (``None`` for a qualitative claim);
    ``paper_value_text`` is the number as printed in the paper (e.g. ``"9.8 x 10^-21"``);
    ``provenance`` says how the number was verified (e.g. ``V-src``: read in the authors'
    code; ``V-2nd``: read in the paper's text; ``C``: computed by us from the paper's formula).
    """

    id: str
    chapter: str
    paper: str
    where: str
    statement: str
    paper_value: float | None
    paper_value_text: str
    paper_setting: str
    provenance: str


def load_paper_claims(chapter: str | None = None, path: Path | None = None) -> dict[str, PaperClaim]:
    """Read ``data/paper_claims.csv`` (optionally only one chapter's rows), keyed by id."""
    path = Path(path) if path is not None else paths.paper_claims_csv()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise ValueError(f"{path} must have columns {CSV_COLUMNS} (got {reader.fieldnames})")
        rows = {}
        for row in reader:
            if row["id"] in rows:
                raise ValueError(f"duplicate claim id {row['id']!r} in {path}")
            value = row["paper_value"].strip()
            rows[row["id"]] = PaperClaim(
                **{**row, "paper_value": float(value) if value else None})
    if chapter is not None:
        rows = {k: v for k, v in rows.items() if v.chapter == chapter}
    return rows


@dataclass(frozen=True)
class Claim:
    """One claim as measured in one run (the paper's side plus this run's side)."""

    id: str
    paper: str
    where: str
    statement: str
    paper_value: float | None
    paper_value_text: str
    paper_setting: str
    provenance: str
    measured: float | None
    setting: str
    check: str
    status: str
    reason: str = ""
    exact: bool = False
    repro_rtol: float = EXACT_RTOL
    kind: str = "value"

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES} (got {self.status!r})")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} (got {self.kind!r})")
        if self.status == "not_reproduced" and not self.reason:
            raise ValueError(f"claim {self.id!r}: a not_reproduced claim needs a reason")
        if not self.repro_rtol >= 0:
            raise ValueError(f"repro_rtol must be >= 0 (got {self.repro_rtol})")


def format_number(x: float | None) -> str:
    """A number for a table: 4 significant digits, scientific outside [1e-3, 1e5); None as a dash."""
    if x is None:
        return "—"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.4g}"
    return f"{x:.4e}"


class Scorecard:
    """Collects a chapter's claims, renders them, writes the results record, raises on failure.

    Create it in the chapter's setup cell (its clock starts then), record each claim where
    the chapter measures it, and call :meth:`finish` in the last cell.

    Args:
        chapter: the chapter's file stem, e.g. ``"01_sdr"``.
        seed: the run's seed.
        scale: ``"smoke"``, ``"default"`` or ``"full"``.
        default_seed: the seed of the committed run (0).
    """

    DEFAULT_SCALE = "default"
    SCALES = ("smoke", "default", "full")

    def __init__(self, chapter: str, *, seed: int, scale: str, default_seed: int = 0,
                 claims_csv: Path | None = None):
        if scale not in self.SCALES:
            raise ValueError(f"scale must be one of {self.SCALES} (got {scale!r})")
        self.chapter = chapter
        self.seed = seed
        self.scale = scale
        self.default_seed = default_seed
        self.paper_claims = load_paper_claims(chapter, claims_csv)
        if not self.paper_claims:
            raise ValueError(f"no claims for chapter {chapter!r} in data/paper_claims.csv")
        self.claims: dict[str, Claim] = {}
        self._start = time.perf_counter()

    # -- recording ---------------------------------------------------------------------
    def record(self, claim_id: str, *, measured: float | None, setting: str, check: str,
               passed: bool, not_reproduced_reason: str = "", exact: bool = False,
               repro_rtol: float = EXACT_RTOL, kind: str = "value") -> None:
        """Record one claim's measurement and the outcome of its check.

        Args:
            claim_id: a row id of ``data/paper_claims.csv`` for this chapter.
            measured: this run's number (``None`` only for a purely qualitative check).
            setting: this run's setting in words (sizes, seeds, trials).
            check: the relation that must hold, and why its tolerance is what it is.
            passed: whether the check held in this run.
            not_reproduced_reason: give it only when the chapter knows, before the
                result, why the check cannot hold here; a failed check with a reason is
                ``not_reproduced``, without one it is ``fail``. A passed check ignores it.
            exact: the measured value is an exact (closed-form or seeded integer)
                computation that must print identically on any machine.
            repro_rtol: how far a re-run's ``measured`` may be from the committed one.
            kind: ``"speed"`` for a timing ratio: its status is compared between runs,
                its value is recorded but not required to repeat.
        """
        if claim_id not in self.paper_claims:
            raise KeyError(f"claim {claim_id!r} is not a row of data/paper_claims.csv "
                           f"for chapter {self.chapter!r}")
        if claim_id in self.claims:
            raise ValueError(f"claim {claim_id!r} recorded twice")
        if measured is not None:
            measured = float(measured)
            if not math.isfinite(measured):
                raise ValueError(f"claim {claim_id!r}: measured must be finite (got {measured})")
        if passed:
            status, reason = "pass", ""
        elif not_reproduced_reason:
            status, reason = "not_reproduced", not_reproduced_reason
        else:
            status, reason = "fail", ""
        p = self.paper_claims[claim_id]
        claim = Claim(id=p.id, paper=p.paper, where=p.where, statement=p.statement,
                      paper_value=p.paper_value, paper_value_text=p.paper_value_text,
                      paper_setting=p.paper_setting, provenance=p.provenance,
                      measured=measured, setting=setting, check=check, status=status,
                      reason=reason, exact=exact, repro_rtol=repro_rtol, kind=kind)
        self.claims[claim_id] = claim

    # -- reporting ---------------------------------------------------------------------
    def table(self):
        """The scorecard as a pandas DataFrame, one row per recorded claim."""
        import pandas as pd

        mark = {"pass": "✅ pass", "fail": "❌ fail", "not_reproduced": "⚠️ not reproduced"}
        rows = [{
            "claim": c.id,
            "paper": f"{c.paper} ({c.where})",
            "paper's number": c.paper_value_text or format_number(c.paper_value),
            "our number": format_number(c.measured),
            "our setting": c.setting,
            "check": c.check,
            "status": mark[c.status] + (f": {c.reason}" if c.reason else ""),
        } for c in self.claims.values()]
        return pd.DataFrame(rows).set_index("claim")

    def stamp(self) -> dict:
        """The run stamp: date, versions, CPU, threads, seed, scale, wall seconds so far."""
        return {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            **hardware_fingerprint(),
            "seed": self.seed,
            "scale": self.scale,
            "seconds": round(time.perf_counter() - self._start, 1),
        }

    def verified_line(self, stamp: dict | None = None) -> str:
        """One Markdown line saying when and on what this run verified the chapter."""
        s = stamp or self.stamp()
        return (f"**Last verified** {s['date']} with sparsity_core {s['sparsity_core']}, "
                f"torch {s['torch']}, Python {s['python']} on {s['cpu']} "
                f"({s['threads']} threads), seed {s['seed']}, scale `{s['scale']}`, "
                f"{s['seconds']} s.")

    def results_path(self) -> Path:
        """``<chapter>.json`` for the default run, a name that says otherwise for others."""
        name = self.chapter
        if self.scale != self.DEFAULT_SCALE:
            name += f".{self.scale}"
        if self.seed != self.default_seed:
            name += f".seed{self.seed}"
        return paths.results_dir() / f"{name}.json"

    def record_dict(self) -> dict:
        """The results record (DESIGN.md's shape)."""
        return {"chapter": self.chapter, "stamp": self.stamp(),
                "claims": [asdict(c) for c in self.claims.values()]}

    def finish(self) -> dict:
        """Write the results JSON, print the machine-independent summary, raise on failure.

        The printed lines (each claim's id, its status and, for exact claims, its value)
        are what nbval compares against the committed notebook, so they must be
        identical on any machine; trained numbers are compared through the JSON.
        """
        missing = sorted(set(self.paper_claims) - set(self.claims))
        if missing:
            raise ScorecardFailure(f"claims listed in data/paper_claims.csv but never recorded: {missing}")
        record = self.record_dict()
        out = self.results_path()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        counts = {s: sum(c.status == s for c in self.claims.values()) for s in STATUSES}
        print(f"{self.chapter}: {len(self.claims)} claims: {counts['pass']} pass, "
              f"{counts['not_reproduced']} not reproduced, {counts['fail']} fail")
        width = max(len(c.id) for c in self.claims.values())
        for c in self.claims.values():
            value = f"{c.measured:.10g}" if (c.exact and c.measured is not None) else ""
            print(f"  {c.status:<15} {c.id:<{width}}  {value}".rstrip())
        failed = [c.id for c in self.claims.values() if c.status == "fail"]
        if failed:
            raise ScorecardFailure(f"{len(failed)} claim(s) failed: {failed}")
        return record


# -- comparing a fresh run with the committed record ------------------------------------
def compare_records(committed: dict, fresh: dict) -> list[str]:
    """Differences between two results records, ignoring the run stamp.

    Claims must match one for one, with equal statuses and paper values; a value claim's
    ``measured`` must agree within the committed claim's ``repro_rtol``; a speed claim's
    value is not compared. Returns a list of human-readable problems (empty if equal).
    """
    problems = []
    if committed.get("chapter") != fresh.get("chapter"):
        problems.append(f"chapter differs: {committed.get('chapter')!r} vs {fresh.get('chapter')!r}")
    old = {c["id"]: c for c in committed.get("claims", [])}
    new = {c["id"]: c for c in fresh.get("claims", [])}
    for cid in sorted(set(old) ^ set(new)):
        problems.append(f"{cid}: only in the {'committed' if cid in old else 'fresh'} record")
    for cid in sorted(set(old) & set(new)):
        a, b = old[cid], new[cid]
        for key in ("status", "paper_value", "exact", "kind"):
            if a.get(key) != b.get(key):
                problems.append(f"{cid}: {key} committed {a.get(key)!r}, fresh {b.get(key)!r}")
        if a.get("kind") == "speed":
            continue
        ma, mb = a.get("measured"), b.get("measured")
        if (ma is None) != (mb is None):
            problems.append(f"{cid}: measured committed {ma!r}, fresh {mb!r}")
        elif ma is not None and not math.isclose(ma, mb, rel_tol=a.get("repro_rtol", EXACT_RTOL),
                                                 abs_tol=0.0):
            problems.append(f"{cid}: measured committed {ma!r}, fresh {mb!r} "
                            f"(rtol {a.get('repro_rtol')})")
    return problems


def load_record(path: Path) -> dict:
    """Read one results JSON."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
