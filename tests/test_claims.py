import csv
import json
import re

import pytest

from sparsity_core import claims, paths
from sparsity_core.claims import Scorecard, ScorecardFailure, compare_records, load_paper_claims

CSV_HEADER = ",".join(claims.CSV_COLUMNS)


@pytest.fixture
def csv_path(tmp_path):
    p = tmp_path / "paper_claims.csv"
    rows = [
        ["c-exact", "99_toy", "ahmad2015properties", "Eq. 1", "an exact value", "0.5", "0.5", "n=2", "C"],
        ["c-mc", "99_toy", "ahmad2015properties", "Fig. 2", "a simulated value", "", "", "", "V-src"],
        ["c-other", "98_other", "ahmad2015properties", "Eq. 3", "another chapter", "1", "1", "", "C"],
    ]
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(claims.CSV_COLUMNS)
        w.writerows(rows)
    return p


@pytest.fixture
def card(csv_path, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.RESULTS_ENV, str(tmp_path / "results"))
    return Scorecard("99_toy", seed=0, scale="default", claims_csv=csv_path)


def test_load_filters_by_chapter(csv_path):
    rows = load_paper_claims("99_toy", csv_path)
    assert set(rows) == {"c-exact", "c-mc"}
    assert rows["c-exact"].paper_value == 0.5 and rows["c-mc"].paper_value is None


def test_statuses(card):
    card.record("c-exact", measured=0.5, setting="s", check="==", passed=True)
    assert card.claims["c-exact"].status == "pass"
    card.record("c-mc", measured=0.1, setting="s", check="<", passed=False,
                not_reproduced_reason="too small here")
    c = card.claims["c-mc"]
    assert c.status == "not_reproduced" and c.reason == "too small here"


def test_failed_claim_without_reason_is_fail_and_finish_raises(card, capsys):
    card.record("c-exact", measured=0.4, setting="s", check="==", passed=False)
    card.record("c-mc", measured=0.1, setting="s", check="<", passed=True)
    with pytest.raises(ScorecardFailure, match="c-exact"):
        card.finish()
    # the record is still written, so the failure can be inspected
    rec = json.loads(card.results_path().read_text())
    assert [c["status"] for c in rec["claims"]] == ["fail", "pass"]


def test_unrecorded_claim_cannot_be_dropped(card):
    card.record("c-exact", measured=0.5, setting="s", check="==", passed=True)
    with pytest.raises(ScorecardFailure, match="never recorded"):
        card.finish()


def test_unknown_and_duplicate_claims_raise(card):
    with pytest.raises(KeyError, match="c-other"):
        card.record("c-other", measured=1, setting="", check="", passed=True)
    card.record("c-exact", measured=0.5, setting="", check="", passed=True)
    with pytest.raises(ValueError, match="twice"):
        card.record("c-exact", measured=0.5, setting="", check="", passed=True)


def test_bad_input(card, csv_path):
    with pytest.raises(ValueError, match="scale"):
        Scorecard("99_toy", seed=0, scale="huge", claims_csv=csv_path)
    with pytest.raises(ValueError, match="finite"):
        card.record("c-exact", measured=float("nan"), setting="", check="", passed=True)
    with pytest.raises(ValueError, match="no claims"):
        Scorecard("00_none", seed=0, scale="default", claims_csv=csv_path)


def test_finish_prints_machine_independent_lines(card, capsys):
    card.record("c-exact", measured=0.5, setting="s", check="==", passed=True, exact=True)
    card.record("c-mc", measured=0.123456789, setting="s", check="<", passed=True)
    rec = card.finish()
    out = capsys.readouterr().out
    assert "99_toy: 2 claims: 2 pass, 0 not reproduced, 0 fail" in out
    assert re.search(r"pass\s+c-exact\s+0\.5\n", out)
    assert "0.1234" not in out  # non-exact values are compared through the JSON only
    stamp = rec["stamp"]
    for key in ("date", "sparsity_core", "torch", "python", "cpu", "threads", "seed", "scale", "seconds"):
        assert key in stamp
    assert card.results_path().name == "99_toy.json"


def test_results_path_names_non_default_runs(csv_path, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.RESULTS_ENV, str(tmp_path))
    assert Scorecard("99_toy", seed=0, scale="smoke", claims_csv=csv_path).results_path().name == "99_toy.smoke.json"
    assert Scorecard("99_toy", seed=3, scale="default", claims_csv=csv_path).results_path().name == "99_toy.seed3.json"


def test_table_has_both_numbers(card):
    card.record("c-exact", measured=0.5, setting="n=2", check="==", passed=True)
    df = card.table()
    assert list(df.columns) == ["paper", "paper's number", "our number", "our setting", "check", "status"]
    assert df.loc["c-exact", "paper's number"] == "0.5" and df.loc["c-exact", "our number"] == "0.5"


def _record(**over):
    claim = {"id": "a", "status": "pass", "paper_value": 1.0, "exact": False, "kind": "value",
             "measured": 0.30, "repro_rtol": 0.01}
    claim.update(over)
    return {"chapter": "99_toy", "stamp": {"date": "x"}, "claims": [claim]}


def test_compare_ignores_stamp_and_respects_tolerance():
    a, b = _record(), _record(measured=0.302)
    b["stamp"] = {"date": "y"}
    assert compare_records(a, b) == []
    assert compare_records(a, _record(measured=0.31))  # 3 % off, tolerance 1 %


def test_compare_catches_status_and_hand_edits():
    assert any("status" in p for p in compare_records(_record(), _record(status="fail")))
    exact = _record(exact=True, repro_rtol=claims.EXACT_RTOL, measured=9.77936e-21)
    edited = _record(exact=True, repro_rtol=claims.EXACT_RTOL, measured=9.8e-21)
    assert compare_records(exact, edited)
    assert any("only in" in p for p in compare_records(_record(), {"chapter": "99_toy", "claims": []}))


def test_compare_speed_claims_by_status_only():
    a, b = _record(kind="speed", measured=2.0), _record(kind="speed", measured=5.0)
    assert compare_records(a, b) == []


def test_every_csv_paper_key_resolves_in_bibliography():
    bib = (paths.repo_root() / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    rows = load_paper_claims()
    assert rows, "data/paper_claims.csv is empty"
    missing = {r.paper for r in rows.values()} - keys
    assert not missing, f"paper keys not in references.bib: {missing}"
    for r in rows.values():
        assert r.statement and r.where and r.provenance, r.id
