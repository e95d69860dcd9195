"""Claims and scorecards: the machinery that turns a chapter into a reproducibility check.

A *claim* is one checkable statement from one paper. Everything decided before a run lives
in ``data/paper_claims.csv`` (one row per claim), never in notebook code: the paper's own
number, where in the paper it stands and how it was verified; the claim's kind; what we
expect at the default scale (``expect``, and for an expected miss the fixed
``expected_reason``); and how closely a re-run must reproduce the measured value
(``repro_rtol``, ``repro_atol``, ``repro_reason``). A claim that checks a whole table of the
paper's numbers reads the entries from ``data/paper_values.csv`` (:mod:`sparsity_core.paper_values`),
so no paper number is typed in a notebook. A chapter measures each claim in its own
run and calls :meth:`Scorecard.record` with the outcome of its check; the scorecard turns
that outcome and the row's expectation into a status, renders a table, writes
``data/results/<chapter>.json`` and raises :class:`ScorecardFailure` on a failure.

Statuses (the chapter never writes one):
    ``pass``            the check held in this run. If the row expected ``not_reproduced``
                        the claim is flagged ``unexpected_pass`` and :func:`compare_records`
                        reports it until the row is updated (like pytest's strict xfail).
    ``not_reproduced``  the check did not hold and the row expects exactly that; the reason
                        is the row's ``expected_reason``. Never counted as a pass.
    ``fail``            the check did not hold and the row expects ``pass``: the chapter
                        raises (at ``SCALE="smoke"`` only exact claims raise; see
                        :class:`Scorecard`).

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

import numpy as np

from . import paths
from .bench import hardware_fingerprint

STATUSES = ("pass", "fail", "not_reproduced")
EXPECTS = ("pass", "not_reproduced")
#: ``exact``: a closed-form or seeded integer computation, printed in the nbval-checked
#: cell and compared at :data:`EXACT_RTOL`; ``value``: a measured (trained, simulated)
#: number, compared within the row's tolerance; ``speed``: a timing ratio, compared by
#: status only (its value is recorded, not required to repeat).
KINDS = ("exact", "value", "speed")
#: Columns of ``data/paper_claims.csv``, in order.
CSV_COLUMNS = ("id", "chapter", "paper", "where", "statement", "paper_value",
               "paper_value_text", "paper_setting", "provenance", "kind", "expect",
               "expected_reason", "repro_rtol", "repro_atol", "repro_reason")
#: Relative tolerance for re-measuring an exact computation between runs.
EXACT_RTOL = 1e-9
#: The widest relative reproduction tolerance a ``value`` claim may declare.
MAX_VALUE_RTOL = 0.1


class ScorecardFailure(AssertionError):
    """Raised at the end of a chapter when at least one claim failed."""


@dataclass(frozen=True)
class PaperClaim:
    """One row of ``data/paper_claims.csv``: the paper's side and our expectations, fixed
    before any run.

    ``paper_value`` is the paper's number as a float (``None`` for a qualitative claim);
    ``paper_value_text`` the number as printed (e.g. ``"9.8 x 10^-21"``); ``provenance`` how
    it was verified (``V-src``: read in the authors' code; ``V-paper`` / ``V-2nd``: read in
    the paper; ``C``: computed by us from the paper's formula). ``kind`` is one of
    :data:`KINDS`; ``expect`` one of :data:`EXPECTS`, with ``expected_reason`` (the
    mechanism that stops the claim at our scale, and where the chapter shows it) present
    exactly when ``expect`` is ``not_reproduced``. ``repro_rtol`` / ``repro_atol`` bound how
    far a re-run's measured value may move (``|a - b| <= max(rtol * max(|a|, |b|), atol)``),
    and ``repro_reason`` says why they are that wide; both are ``None`` for speed claims.
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
    kind: str
    expect: str
    expected_reason: str
    repro_rtol: float | None
    repro_atol: float | None
    repro_reason: str


def _float_or_none(text: str, what: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number or empty (got {text!r})") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite (got {text!r})")
    return value


def parse_claim_row(row: dict[str, str]) -> PaperClaim:
    """Validate one CSV row and return it as a :class:`PaperClaim`; raise ``ValueError``
    naming the claim and the column on anything the contract forbids."""
    cid = row.get("id", "").strip()
    if not cid:
        raise ValueError("every row of paper_claims.csv needs an id")

    def bad(msg):
        return ValueError(f"claim {cid!r}: {msg}")

    for col in ("chapter", "paper", "where", "statement", "provenance"):
        if not row[col].strip():
            raise bad(f"column {col!r} is empty")
    kind, expect, reason = row["kind"].strip(), row["expect"].strip(), row["expected_reason"].strip()
    if kind not in KINDS:
        raise bad(f"kind must be one of {KINDS} (got {kind!r})")
    if expect not in EXPECTS:
        raise bad(f"expect must be one of {EXPECTS} (got {expect!r})")
    if expect == "not_reproduced" and not reason:
        raise bad("expect=not_reproduced needs an expected_reason (the mechanism, and where the chapter shows it)")
    if expect == "pass" and reason:
        raise bad("expect=pass must not carry an expected_reason")
    rtol = _float_or_none(row["repro_rtol"], f"claim {cid!r}: repro_rtol")
    atol = _float_or_none(row["repro_atol"], f"claim {cid!r}: repro_atol")
    repro_reason = row["repro_reason"].strip()
    if kind == "speed":
        if rtol is not None or atol is not None:
            raise bad("a speed claim is compared by status only: leave repro_rtol and repro_atol empty")
    else:
        if rtol is None or atol is None:
            raise bad(f"a {kind} claim needs repro_rtol and repro_atol")
        if rtol < 0 or atol < 0:
            raise bad(f"repro_rtol and repro_atol must be >= 0 (got {rtol}, {atol})")
        if kind == "exact" and (rtol > EXACT_RTOL or atol != 0):
            raise bad(f"an exact claim reproduces to repro_rtol <= {EXACT_RTOL} with repro_atol 0 "
                      f"(got {rtol}, {atol})")
        if kind == "value":
            if rtol > MAX_VALUE_RTOL:
                raise bad(f"repro_rtol must be <= {MAX_VALUE_RTOL} for a measured value (got {rtol})")
            if not repro_reason:
                raise bad("a value claim needs a repro_reason saying why its tolerance is that wide")
    return PaperClaim(
        id=cid, chapter=row["chapter"].strip(), paper=row["paper"].strip(), where=row["where"],
        statement=row["statement"], paper_value=_float_or_none(row["paper_value"], f"claim {cid!r}: paper_value"),
        paper_value_text=row["paper_value_text"], paper_setting=row["paper_setting"],
        provenance=row["provenance"], kind=kind, expect=expect, expected_reason=reason,
        repro_rtol=rtol, repro_atol=atol, repro_reason=repro_reason)


def load_paper_claims(chapter: str | None = None, path: Path | None = None) -> dict[str, PaperClaim]:
    """Read and validate ``data/paper_claims.csv`` (optionally only one chapter's rows),
    keyed by id. Raises ``ValueError`` on unknown or missing columns, duplicate ids and any
    row :func:`parse_claim_row` rejects."""
    path = Path(path) if path is not None else paths.paper_claims_csv()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = tuple(reader.fieldnames or ())
        if fields != CSV_COLUMNS:
            unknown = sorted(set(fields) - set(CSV_COLUMNS))
            missing = [c for c in CSV_COLUMNS if c not in fields]
            raise ValueError(f"{path} must have the columns {CSV_COLUMNS} in that order "
                             f"(unknown: {unknown}, missing: {missing})")
        rows = {}
        for line, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise ValueError(f"{path}:{line}: wrong number of fields")
            claim = parse_claim_row(row)
            if claim.id in rows:
                raise ValueError(f"duplicate claim id {claim.id!r} in {path}")
            rows[claim.id] = claim
    if chapter is not None:
        rows = {k: v for k, v in rows.items() if v.chapter == chapter}
    return rows


@dataclass(frozen=True)
class Claim:
    """One claim as measured in one run: the CSV row's fields plus this run's side."""

    id: str
    paper: str
    where: str
    statement: str
    paper_value: float | None
    paper_value_text: str
    paper_setting: str
    provenance: str
    kind: str
    expect: str
    measured: float | None
    setting: str
    check: str
    status: str
    reason: str = ""
    unexpected_pass: bool = False
    note: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES} (got {self.status!r})")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} (got {self.kind!r})")
        if self.expect not in EXPECTS:
            raise ValueError(f"expect must be one of {EXPECTS} (got {self.expect!r})")
        if (self.status == "not_reproduced") != bool(self.reason):
            raise ValueError(f"claim {self.id!r}: exactly the not_reproduced claims carry a reason")


def decide_status(passed: bool, row: PaperClaim) -> tuple[str, str, bool]:
    """The one place a status is decided: ``(status, reason, unexpected_pass)`` from the
    check's outcome and the row's expectation."""
    if passed:
        return "pass", "", row.expect == "not_reproduced"
    if row.expect == "not_reproduced":
        return "not_reproduced", row.expected_reason, False
    return "fail", "", False


def format_number(x: float | None) -> str:
    """A number for a table: 4 significant digits, scientific outside [1e-3, 1e5); None as a dash."""
    if x is None:
        return "—"
    if x == 0:
        return "0"
    if not 1e-3 <= abs(x) < 1e5:
        return f"{x:.3e}"                       # 4 significant digits: 1.825e-42
    rounded = float(f"{x:.3e}")                  # 4 significant digits, then positional:
    return f"{rounded:f}".rstrip("0").rstrip(".")   # 4 digits after 1e-3 are within %f's 6 decimals


def status_label(claim: dict, *, markdown: bool = False) -> str:
    """How a status reads beside its expectation: an expected miss, an unexpected miss (a
    failure) and an unexpected pass look different."""
    status, expect = claim["status"], claim.get("expect", "pass")
    strong = (lambda s: f"**{s}**") if markdown else (lambda s: s)
    if status == "pass" and claim.get("unexpected_pass"):
        return "❗ " + strong("unexpected pass") + " (the CSV expects not reproduced: update the row)"
    if status == "pass":
        return "✅ pass"
    if status == "not_reproduced":
        return "⚠️ not reproduced, as expected"
    return "❌ " + strong("FAIL") + (" (expected to pass)" if expect == "pass" else "")


class Scorecard:
    """Collects a chapter's claims, renders them, writes the results record, raises on failure.

    Create it in the chapter's setup cell (its clock starts then), record each claim where
    the chapter measures it, and call :meth:`finish` in the last cell.

    The CSV's expectations are for ``SCALE="default"`` (and hold for ``"full"``). A
    ``"smoke"`` run only proves the chapter's code runs: its claims are recorded and shown
    the same way, but only a failed ``exact`` claim (which no scale changes) raises.

    Args:
        chapter: the chapter's file stem, e.g. ``"01_sdr"``.
        seed: the run's seed.
        scale: ``"smoke"``, ``"default"`` or ``"full"``.
        default_seed: the seed of the committed run (0).
        claims_csv: another claims file (tests).
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
               passed: bool, note: str = "") -> None:
        """Record one claim's measurement and the outcome of its check.

        The status follows from ``passed`` and the CSV row's expectation
        (:func:`decide_status`); kind and tolerances come from the row too.

        Args:
            claim_id: a row id of ``data/paper_claims.csv`` for this chapter.
            measured: this run's number (``None`` only for a purely qualitative check).
            setting: this run's setting in words (sizes, seeds, trials). It is compared
                exactly between runs: no trained numbers here, put those in ``note``.
            check: the relation that must hold (compared exactly, like ``setting``).
            passed: whether the check held in this run.
            note: free text for the reader with this run's numbers; not compared between
                runs and never part of a status.
        """
        if claim_id not in self.paper_claims:
            raise KeyError(f"claim {claim_id!r} is not a row of data/paper_claims.csv "
                           f"for chapter {self.chapter!r}")
        if claim_id in self.claims:
            raise ValueError(f"claim {claim_id!r} recorded twice")
        # a truthy non-boolean (the string "False", a one-element tensor) would pass silently
        if not isinstance(passed, (bool, np.bool_)):
            raise TypeError(f"claim {claim_id!r}: passed must be a bool (got {type(passed).__name__})")
        passed = bool(passed)
        for name, text in (("setting", setting), ("check", check)):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"claim {claim_id!r}: {name} must be a non-empty string (got {text!r})")
        if not isinstance(note, str):
            raise TypeError(f"claim {claim_id!r}: note must be a string (got {type(note).__name__})")
        if measured is not None:
            measured = float(measured)
            if not math.isfinite(measured):
                raise ValueError(f"claim {claim_id!r}: measured must be finite (got {measured})")
        p = self.paper_claims[claim_id]
        status, reason, unexpected = decide_status(passed, p)
        self.claims[claim_id] = Claim(
            id=p.id, paper=p.paper, where=p.where, statement=p.statement,
            paper_value=p.paper_value, paper_value_text=p.paper_value_text,
            paper_setting=p.paper_setting, provenance=p.provenance, kind=p.kind,
            expect=p.expect, measured=measured, setting=setting, check=check, status=status,
            reason=reason, unexpected_pass=unexpected, note=note)

    # -- reporting ---------------------------------------------------------------------
    def table(self):
        """The scorecard as a pandas DataFrame, one row per recorded claim.

        The column "other seeds" is how often each claim held in the chapter's committed
        seed sweep (``data/sweeps/<chapter>.json``, :mod:`sparsity_core.sweeps`), marked stale
        when the chapter's sources changed since the sweep.
        """
        import pandas as pd

        from . import sweeps

        try:
            sweep = sweeps.load_sweep(self.chapter)
            current = sweeps.source_hash(self.chapter) if sweep is not None else None
        except FileNotFoundError:                    # a notebook outside book/ (tests, drafts)
            sweep, current = None, None
        rows = [{
            "claim": c.id,
            "paper": f"{c.paper} ({c.where})",
            "paper's number": c.paper_value_text or format_number(c.paper_value),
            "our number": format_number(c.measured),
            "our setting": c.setting + (f" [{c.note}]" if c.note else ""),
            "check": c.check,
            "expected": c.expect.replace("_", " "),
            "status": status_label(asdict(c)) + (f": {c.reason}" if c.reason else ""),
            "other seeds": sweeps.holds_text(sweep, c.id, current) or "no sweep yet",
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
        identical on any machine; measured numbers are compared through the JSON.
        """
        missing = sorted(set(self.paper_claims) - set(self.claims))
        if missing:
            raise ScorecardFailure(f"claims listed in data/paper_claims.csv but never recorded: {missing}")
        record = self.record_dict()
        out = self.results_path()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        claims = list(self.claims.values())
        counts = {s: sum(c.status == s for c in claims) for s in STATUSES}
        unexpected = [c.id for c in claims if c.unexpected_pass]
        print(f"{self.chapter}: {len(claims)} claims: {counts['pass']} pass, "
              f"{counts['not_reproduced']} not reproduced (expected), {counts['fail']} fail"
              + (f", {len(unexpected)} unexpected pass" if unexpected else ""))
        width = max(len(c.id) for c in claims)
        for c in claims:
            value = f"{c.measured:.10g}" if (c.kind == "exact" and c.measured is not None) else ""
            status = "UNEXPECTED pass" if c.unexpected_pass else c.status
            print(f"  {status:<15} {c.id:<{width}}  {value}".rstrip())
        failed = [c.id for c in claims if c.status == "fail"
                  and (self.scale != "smoke" or c.kind == "exact")]
        if self.scale == "smoke" and any(c.status == "fail" for c in claims):
            print("  (smoke scale: failed measured claims are shown, not enforced)")
        if failed:
            raise ScorecardFailure(f"{len(failed)} claim(s) failed: {failed}")
        return record


# -- comparing a fresh run with the committed record ------------------------------------
#: Claim fields compared exactly between the committed and the fresh record.
EXACT_FIELDS = ("paper", "where", "statement", "paper_value", "paper_value_text", "paper_setting",
                "provenance", "kind", "expect", "setting", "check", "status", "reason",
                "unexpected_pass")
#: Claim fields never compared: free text with this run's numbers.
FREE_FIELDS = ("note",)


def compare_records(committed: dict, fresh: dict,
                    paper_claims: dict[str, PaperClaim] | None = None) -> list[str]:
    """Differences between a committed and a fresh results record, ignoring the run stamp.

    Claims must match one for one. Every field but ``measured`` and ``note`` must be equal
    (status, paper side, setting, check, expectation, reason); a value or exact claim's
    ``measured`` must agree within the tolerance of its row in ``paper_claims`` (the CSV,
    never the record); a speed claim's value is not compared. An ``unexpected_pass`` in
    either record is a problem until the CSV row is updated and the record refreshed.

    Returns a list of human-readable problems (empty if the records agree).
    """
    if paper_claims is None:
        paper_claims = load_paper_claims(committed.get("chapter"))
    problems = []
    if committed.get("chapter") != fresh.get("chapter"):
        problems.append(f"chapter differs: {committed.get('chapter')!r} vs {fresh.get('chapter')!r}")
    old = {c["id"]: c for c in committed.get("claims", [])}
    new = {c["id"]: c for c in fresh.get("claims", [])}
    for cid in sorted(set(old) ^ set(new)):
        problems.append(f"{cid}: only in the {'committed' if cid in old else 'fresh'} record")
    for cid in sorted(set(old) & set(new)):
        a, b = old[cid], new[cid]
        for key in sorted((set(a) | set(b)) - {"id", "measured", *FREE_FIELDS}):
            if key not in EXACT_FIELDS:
                problems.append(f"{cid}: unknown field {key!r}")
            elif a.get(key) != b.get(key):
                problems.append(f"{cid}: {key} committed {a.get(key)!r}, fresh {b.get(key)!r}")
        for name, rec in (("committed", a), ("fresh", b)):
            if rec.get("unexpected_pass"):
                problems.append(f"{cid}: passed in the {name} record although data/paper_claims.csv "
                                "expects not_reproduced: update the row's expectation")
        row = paper_claims.get(cid)
        if row is None:
            problems.append(f"{cid}: not a row of data/paper_claims.csv")
            continue
        if row.kind == "speed":
            continue
        ma, mb = a.get("measured"), b.get("measured")
        if (ma is None) != (mb is None):
            problems.append(f"{cid}: measured committed {ma!r}, fresh {mb!r}")
        elif ma is not None and not math.isclose(ma, mb, rel_tol=row.repro_rtol, abs_tol=row.repro_atol):
            problems.append(f"{cid}: measured committed {ma!r}, fresh {mb!r} "
                            f"(CSV tolerance: rtol {row.repro_rtol}, atol {row.repro_atol})")
    return problems


def load_record(path: Path) -> dict:
    """Read one results JSON; raise ``ValueError`` naming the file if it is not a record."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(record, dict) or not {"chapter", "stamp", "claims"} <= set(record):
        raise ValueError(f"{path} is not a results record (needs chapter, stamp and claims)")
    return record
