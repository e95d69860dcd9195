"""The scorecard harness: statuses follow the CSV's expectations, tolerances come from the
CSV, and each planted fault (an undeclared failure, an unexpected pass, a value outside
tolerance, a hand-edited field, a missing record, a bad CSV row) is caught."""
import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from sparsity_core import claims, paths
from sparsity_core.claims import (Scorecard, ScorecardFailure, compare_records, decide_status,
                                  load_paper_claims, load_record)

ROW = dict(paper="ahmad2015properties", where="Eq. 1", statement="a statement", paper_value="0.5",
           paper_value_text="0.5", paper_setting="n=2", provenance="C", kind="value", expect="pass",
           expected_reason="", repro_rtol="0.05", repro_atol="0", repro_reason="seeded training")


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=claims.CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({**ROW, **r})
    return path


@pytest.fixture
def csv_path(tmp_path):
    return write_csv(tmp_path / "paper_claims.csv", [
        dict(id="c-exact", chapter="99_toy", kind="exact", repro_rtol="1e-9", repro_atol="0", repro_reason=""),
        dict(id="c-mc", chapter="99_toy", paper_value="", paper_value_text="", repro_rtol="0.01",
             repro_atol="0.001"),
        dict(id="c-miss", chapter="99_toy", expect="not_reproduced",
             expected_reason="too few steps: the figure shows the loss still falling"),
        dict(id="c-speed", chapter="99_toy", kind="speed", repro_rtol="", repro_atol="", repro_reason=""),
        dict(id="c-other", chapter="98_other"),
    ])


@pytest.fixture
def card(csv_path, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.RESULTS_ENV, str(tmp_path / "results"))
    return Scorecard("99_toy", seed=0, scale="default", claims_csv=csv_path)


def record_all(card, **passed):
    for cid in ("c-exact", "c-mc", "c-miss", "c-speed"):
        card.record(cid, measured={"c-exact": 0.5, "c-mc": 0.3, "c-miss": 2.0, "c-speed": 3.0}[cid],
                    setting="s", check="c", passed=passed.get(cid.replace("-", "_"), True)
                    if cid != "c-miss" else passed.get("c_miss", False))


# -- the CSV ----------------------------------------------------------------------------
def test_load_filters_by_chapter_and_parses(csv_path):
    rows = load_paper_claims("99_toy", csv_path)
    assert set(rows) == {"c-exact", "c-mc", "c-miss", "c-speed"}
    assert rows["c-exact"].paper_value == 0.5 and rows["c-mc"].paper_value is None
    assert rows["c-mc"].repro_rtol == 0.01 and rows["c-mc"].repro_atol == 0.001
    assert rows["c-speed"].repro_rtol is None


@pytest.mark.parametrize("bad, match", [
    (dict(expect="pass", expected_reason="a reason after all"), "must not carry an expected_reason"),
    (dict(expect="not_reproduced", expected_reason=""), "needs an expected_reason"),
    (dict(expect="maybe"), "expect must be one of"),
    (dict(kind="trained"), "kind must be one of"),
    (dict(repro_rtol="1.0"), "must be <= 0.1"),
    (dict(repro_rtol=""), "needs repro_rtol and repro_atol"),
    (dict(repro_atol="-1"), ">= 0"),
    (dict(repro_rtol="nan"), "finite"),
    (dict(repro_rtol="loose"), "must be a number"),
    (dict(repro_reason=""), "repro_reason"),
    (dict(kind="exact", repro_rtol="1e-6", repro_atol="0"), "exact claim"),
    (dict(kind="speed", repro_rtol="0.1"), "speed claim"),
    (dict(statement=""), "'statement' is empty"),
    (dict(paper_value="about 3"), "paper_value must be a number"),
])
def test_bad_rows_are_rejected(tmp_path, bad, match):
    path = write_csv(tmp_path / "c.csv", [dict(id="c-bad", chapter="99_toy", **bad)])
    with pytest.raises(ValueError, match=re.escape(match)):
        load_paper_claims(path=path)


def test_unknown_missing_and_duplicate_columns_and_ids(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(",".join(claims.CSV_COLUMNS) + ",status\n")
    with pytest.raises(ValueError, match=r"unknown: \['status'\]"):
        load_paper_claims(path=path)
    path.write_text(",".join(c for c in claims.CSV_COLUMNS if c != "expect") + "\n")
    with pytest.raises(ValueError, match=r"missing: \['expect'\]"):
        load_paper_claims(path=path)
    write_csv(path, [dict(id="c", chapter="99_toy"), dict(id="c", chapter="99_toy")])
    with pytest.raises(ValueError, match="duplicate"):
        load_paper_claims(path=path)


def test_every_committed_row_is_valid_and_cites_the_bibliography():
    bib = (paths.repo_root() / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    rows = load_paper_claims()          # validates every row
    assert rows, "data/paper_claims.csv is empty"
    missing = {r.paper for r in rows.values()} - keys
    assert not missing, f"paper keys not in references.bib: {missing}"


# -- statuses ---------------------------------------------------------------------------
def test_status_follows_the_expectation(card):
    record_all(card, c_mc=False)
    c = card.claims
    assert c["c-exact"].status == "pass" and not c["c-exact"].unexpected_pass
    assert c["c-mc"].status == "fail"                               # undeclared miss
    assert c["c-miss"].status == "not_reproduced"                   # declared miss
    assert c["c-miss"].reason == "too few steps: the figure shows the loss still falling"


def test_record_takes_no_reason_status_or_tolerance(card):
    for bad in (dict(not_reproduced_reason="x"), dict(status="pass"), dict(repro_rtol=1.0),
                dict(exact=True), dict(kind="speed")):
        with pytest.raises(TypeError):
            card.record("c-mc", measured=0.3, setting="s", check="c", passed=True, **bad)


def test_undeclared_failure_raises_and_is_written(card):
    record_all(card, c_mc=False)
    with pytest.raises(ScorecardFailure, match="c-mc"):
        card.finish()
    rec = json.loads(card.results_path().read_text())   # written, so it can be inspected
    assert [c["status"] for c in rec["claims"]] == ["pass", "fail", "not_reproduced", "pass"]


def test_declared_miss_does_not_raise(card, capsys):
    record_all(card)
    rec = card.finish()
    out = capsys.readouterr().out
    assert "99_toy: 4 claims: 3 pass, 1 not reproduced (expected), 0 fail" in out
    assert re.search(r"pass\s+c-exact\s+0\.5\n", out)
    assert "0.3" not in out          # measured values are compared through the JSON only
    for key in ("date", "sparsity_core", "torch", "python", "cpu", "threads", "seed", "scale", "seconds"):
        assert key in rec["stamp"]
    assert card.results_path().name == "99_toy.json"


def test_unexpected_pass_is_recorded_and_flagged(card, csv_path, capsys):
    record_all(card, c_miss=True)
    rec = card.finish()               # it does not raise: the comparison catches it
    assert "UNEXPECTED pass" in capsys.readouterr().out
    miss = {c["id"]: c for c in rec["claims"]}["c-miss"]
    assert miss["status"] == "pass" and miss["unexpected_pass"] and miss["reason"] == ""
    problems = compare_records(rec, rec, load_paper_claims("99_toy", csv_path))
    assert any("expects not_reproduced" in p for p in problems)


def test_decide_status_is_the_whole_table(csv_path):
    rows = load_paper_claims("99_toy", csv_path)
    assert decide_status(True, rows["c-mc"]) == ("pass", "", False)
    assert decide_status(False, rows["c-mc"]) == ("fail", "", False)
    assert decide_status(True, rows["c-miss"]) == ("pass", "", True)
    assert decide_status(False, rows["c-miss"]) == ("not_reproduced", rows["c-miss"].expected_reason, False)


def test_smoke_scale_enforces_exact_claims_only(csv_path, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.RESULTS_ENV, str(tmp_path / "results"))
    smoke = Scorecard("99_toy", seed=0, scale="smoke", claims_csv=csv_path)
    record_all(smoke, c_mc=False)
    smoke.finish()                     # a trained miss at smoke scale is shown, not raised
    smoke = Scorecard("99_toy", seed=0, scale="smoke", claims_csv=csv_path)
    record_all(smoke, c_exact=False)
    with pytest.raises(ScorecardFailure, match="c-exact"):
        smoke.finish()


def test_unrecorded_claim_cannot_be_dropped(card):
    card.record("c-exact", measured=0.5, setting="s", check="==", passed=True)
    with pytest.raises(ScorecardFailure, match="never recorded"):
        card.finish()


def test_unknown_and_duplicate_claims_raise(card):
    with pytest.raises(KeyError, match="c-other"):
        card.record("c-other", measured=1, setting="s", check="c", passed=True)
    card.record("c-exact", measured=0.5, setting="s", check="c", passed=True)
    with pytest.raises(ValueError, match="twice"):
        card.record("c-exact", measured=0.5, setting="s", check="c", passed=True)


def test_bad_input(card, csv_path):
    with pytest.raises(ValueError, match="scale"):
        Scorecard("99_toy", seed=0, scale="huge", claims_csv=csv_path)
    with pytest.raises(ValueError, match="finite"):
        card.record("c-exact", measured=float("nan"), setting="s", check="c", passed=True)
    for bad in ("False", 1, torch.tensor(False)):
        with pytest.raises(TypeError, match="passed must be a bool"):
            card.record("c-exact", measured=0.5, setting="s", check="c", passed=bad)
    with pytest.raises(ValueError, match="setting must be a non-empty string"):
        card.record("c-exact", measured=0.5, setting=" ", check="c", passed=True)
    with pytest.raises(ValueError, match="check must be a non-empty string"):
        card.record("c-exact", measured=0.5, setting="s", check=None, passed=True)
    with pytest.raises(TypeError, match="note must be a string"):
        card.record("c-exact", measured=0.5, setting="s", check="c", passed=True, note=3.0)
    card.record("c-exact", measured=0.5, setting="s", check="c", passed=np.bool_(True))   # numpy's bool is fine
    assert card.claims["c-exact"].status == "pass"
    with pytest.raises(ValueError, match="no claims"):
        Scorecard("00_none", seed=0, scale="default", claims_csv=csv_path)


def test_results_path_names_non_default_runs(csv_path, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.RESULTS_ENV, str(tmp_path))
    assert Scorecard("99_toy", seed=0, scale="smoke", claims_csv=csv_path).results_path().name == "99_toy.smoke.json"
    assert Scorecard("99_toy", seed=3, scale="default", claims_csv=csv_path).results_path().name == "99_toy.seed3.json"


def test_table_shows_expectation_beside_status(card):
    record_all(card, c_mc=False, c_miss=False)
    df = card.table()
    assert list(df.columns) == ["paper", "paper's number", "our number", "our setting", "check", "expected", "status",
                                "other seeds"]
    assert (df["other seeds"] == "no sweep yet").all()
    assert df.loc["c-exact", "paper's number"] == "0.5" and df.loc["c-exact", "our number"] == "0.5"
    assert df.loc["c-mc", "status"].startswith("❌ FAIL (expected to pass)")
    assert df.loc["c-miss", "status"].startswith("⚠️ not reproduced, as expected: too few steps")
    assert df.loc["c-miss", "expected"] == "not reproduced"


def test_table_shows_the_sweep_and_marks_it_stale_when_sources_change(card, csv_path, tmp_path, monkeypatch):
    import json
    import shutil

    from sparsity_core import sweeps

    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    (tmp_path / "book").mkdir()
    (tmp_path / "sparsity_core").mkdir()
    (tmp_path / "data" / "sweeps").mkdir(parents=True)
    shutil.copy(csv_path, tmp_path / "data" / "paper_claims.csv")
    nb = tmp_path / "book" / "99_toy.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "x = 1", "outputs": []}]}))
    record = {"chapter": "99_toy", "stamp": {}, "claims": [{"id": "c-exact", "status": "pass", "measured": 0.5}]}
    tasks = {s: {"ok": True, "seconds": 1.0, "peak_mb": 1.0, "error": ""} for s in (1, 2)}
    sweep = sweeps.aggregate("99_toy", "default", [1, 2], sweeps.source_hash("99_toy"), {1: record, 2: record},
                             tasks, "t")
    (tmp_path / "data" / "sweeps" / "99_toy.json").write_text(json.dumps(sweep))
    record_all(card)
    df = card.table()
    assert df.loc["c-exact", "other seeds"] == "holds on 2 of 2 seeds; measured 0.5 ± 0"
    assert df.loc["c-mc", "other seeds"] == "no sweep yet"                  # not in that sweep
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "x = 2", "outputs": []}]}))
    assert card.table().loc["c-exact", "other seeds"].endswith("(stale: sources changed since the sweep)")


# -- comparing records ------------------------------------------------------------------
@pytest.fixture
def rows(csv_path):
    return load_paper_claims("99_toy", csv_path)


@pytest.fixture
def committed(card):
    record_all(card)
    return card.finish()


def edited(record, cid, **changes):
    out = json.loads(json.dumps(record))
    for c in out["claims"]:
        if c["id"] == cid:
            c.update(changes)
    return out


def test_compare_ignores_stamp_and_note(committed, rows):
    fresh = edited(committed, "c-mc", note="this run: 81.2 % vs 80.9 %")
    fresh["stamp"] = {"date": "another day"}
    assert compare_records(committed, fresh, rows) == []


def test_compare_uses_the_csv_tolerance_not_the_record(committed, rows):
    # c-mc: rtol 0.01, atol 0.001 in the CSV; measured 0.3
    assert compare_records(committed, edited(committed, "c-mc", measured=0.302), rows) == []
    assert compare_records(committed, edited(committed, "c-mc", measured=0.31), rows)    # 3 % off
    assert compare_records(committed, edited(committed, "c-mc", measured=0.3 * 40), rows)
    # a tolerance written into the record is ignored
    loose = edited(committed, "c-mc", measured=0.31)
    for rec in (committed, loose):
        for c in rec["claims"]:
            c["repro_rtol"] = 1.0
    assert any("unknown field 'repro_rtol'" in p or "measured" in p for p in compare_records(committed, loose, rows))
    assert any("measured" in p for p in compare_records(committed, loose, rows))


def test_compare_exact_and_absolute_tolerance(committed, rows):
    assert compare_records(committed, edited(committed, "c-exact", measured=0.5 * (1 + 1e-10)), rows) == []
    assert compare_records(committed, edited(committed, "c-exact", measured=0.5 * (1 + 1e-8)), rows)
    near_zero = edited(committed, "c-mc", measured=0.0)
    assert compare_records(near_zero, edited(near_zero, "c-mc", measured=0.0009), rows) == []   # atol 0.001
    assert compare_records(near_zero, edited(near_zero, "c-mc", measured=0.002), rows)


@pytest.mark.parametrize("field, value", [
    ("status", "fail"), ("setting", "another setting"), ("check", "a looser check"),
    ("expect", "not_reproduced"), ("reason", "a reason written after the run"),
    ("paper_value", 0.6), ("statement", "edited"),
])
def test_compare_catches_hand_edits(committed, rows, field, value):
    problems = compare_records(committed, edited(committed, "c-mc", **{field: value}), rows)
    assert any(field in p for p in problems), problems


def test_compare_speed_claims_by_status_only(committed, rows):
    assert compare_records(committed, edited(committed, "c-speed", measured=50.0), rows) == []
    assert compare_records(committed, edited(committed, "c-speed", status="fail"), rows)


def test_compare_catches_dropped_claims_and_unknown_rows(committed, rows):
    fresh = json.loads(json.dumps(committed))
    fresh["claims"] = fresh["claims"][:-1]
    assert any("only in the committed record" in p for p in compare_records(committed, fresh, rows))
    assert any("not a row" in p for p in compare_records(committed, committed,
                                                          {k: v for k, v in rows.items() if k != "c-mc"}))


def test_load_record_rejects_non_records(tmp_path, committed):
    p = tmp_path / "r.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_record(p)
    p.write_text(json.dumps({"chapter": "x"}))
    with pytest.raises(ValueError, match="not a results record"):
        load_record(p)
    p.write_text(json.dumps(committed))
    assert load_record(p) == committed


# -- ci/compare_results.py over the table of contents -----------------------------------
def run_compare(fresh_dir, committed_dir):
    return subprocess.run([sys.executable, "ci/compare_results.py", str(fresh_dir), str(committed_dir)],
                          cwd=paths.repo_root(), capture_output=True, text=True)


def test_compare_script_passes_on_the_committed_records(tmp_path):
    r = run_compare(paths.committed_results_dir(), paths.committed_results_dir())
    assert r.returncode == 0, r.stdout + r.stderr


def test_compare_script_fails_on_a_missing_record(tmp_path):
    import shutil

    fresh = tmp_path / "fresh"
    shutil.copytree(paths.committed_results_dir(), fresh)
    victim = sorted(fresh.glob("*.json"))[0]
    victim.unlink()
    r = run_compare(fresh, paths.committed_results_dir())
    assert r.returncode == 1 and f"{victim.stem}: no fresh record" in r.stdout
    r = run_compare(paths.committed_results_dir(), fresh)      # or a missing committed one
    assert r.returncode == 1 and f"{victim.stem}: no committed record" in r.stdout


def test_compare_script_reads_each_records_own_cpu_out_of_its_settings(tmp_path):
    import shutil

    fresh = tmp_path / "fresh"
    shutil.copytree(paths.committed_results_dir(), fresh)
    path = next(p for p in sorted(fresh.glob("*.json"))
                if any(json.loads(p.read_text())["stamp"]["cpu"] in c.get("setting", "")
                       for c in json.loads(p.read_text())["claims"]))
    rec = json.loads(path.read_text())
    cpu = rec["stamp"]["cpu"]
    rec["stamp"]["cpu"] = "Another CPU 9000"
    for c in rec["claims"]:
        c["setting"] = c["setting"].replace(cpu, "Another CPU 9000")
    path.write_text(json.dumps(rec))
    assert run_compare(fresh, paths.committed_results_dir()).returncode == 0
    # a setting that differs in anything but the stamp's CPU still fails
    rec["claims"][0]["setting"] += " (changed)"
    path.write_text(json.dumps(rec))
    r = run_compare(fresh, paths.committed_results_dir())
    assert r.returncode == 1 and "setting committed" in r.stdout
