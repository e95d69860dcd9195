import subprocess
import sys

from sparsity_core import paths
from sparsity_core.report import chapter_records, report_markdown


def test_report_lists_every_committed_claim():
    records = chapter_records(paths.committed_results_dir())
    text = report_markdown(records)
    for r in records:
        for c in r["claims"]:
            assert f"`{c['id']}`" in text
            assert "{cite}`" + c["paper"] + "`" in text


def test_not_reproduced_is_not_counted_as_pass():
    rec = {"chapter": "99_toy", "stamp": {"date": "d", "cpu": "c", "threads": 2, "torch": "t",
                                           "sparsity_core": "v", "seconds": 1.0},
           "claims": [{"id": "a", "paper": "p", "where": "w", "statement": "s", "paper_value": 1.0,
                       "paper_value_text": "1", "measured": 2.0, "check": "c", "status": "not_reproduced",
                       "reason": "too small"}]}
    text = report_markdown([rec])
    assert "| 1 | 0 | 1 | 0 | 0 |" in text
    assert "**Not reproduced (expected):** too small." in text
    assert "⚠️ not reproduced, as expected" in text
    assert "In all: 1 claims, 0 pass." in text


def _one_claim_record(**claim):
    base = {"id": "a", "paper": "p", "where": "w", "statement": "s", "paper_value": 1.0,
            "paper_value_text": "1", "measured": 2.0, "setting": "st", "check": "c.", "status": "pass",
            "expect": "pass", "reason": "", "unexpected_pass": False, "note": ""}
    return {"chapter": "99_toy", "stamp": {"date": "d", "cpu": "c", "threads": 2, "torch": "t",
                                           "sparsity_core": "v", "seconds": 1.0}, "claims": [{**base, **claim}]}


def test_expected_miss_failure_and_unexpected_pass_look_different():
    fail = report_markdown([_one_claim_record(status="fail")])
    assert "❌ **FAIL** (expected to pass)" in fail and "| 1 | 0 | 0 | 1 | 0 |" in fail
    surprise = report_markdown([_one_claim_record(status="pass", expect="not_reproduced", unexpected_pass=True)])
    assert "❗ **unexpected pass**" in surprise and "| 1 | 1 | 0 | 0 | 1 |" in surprise
    assert "*Check:* c.\n" in report_markdown([_one_claim_record()])   # one full stop, not two


def test_report_shows_the_csv_tolerance():
    from sparsity_core.claims import load_paper_claims

    rows = load_paper_claims("02_pruning")
    rec = {"chapter": "02_pruning", "stamp": _one_claim_record()["stamp"],
           "claims": [_one_claim_record(id="pr1-large-sparse-95")["claims"][0]]}
    text = report_markdown([rec], rows)
    assert "*Re-runs agree within* rtol 0.1, atol 1.5:" in text


def test_committed_report_page_is_fresh():
    r = subprocess.run([sys.executable, "ci/build_report.py", "--check"], cwd=paths.repo_root(),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _sweep(current_hash="h", failed=()):
    from sparsity_core import sweeps

    rec = _one_claim_record()
    tasks = {s: {"ok": s not in failed, "seconds": 1.0, "peak_mb": 1.0, "error": "timed out after 9 s" if s in failed else ""}
             for s in (1, 2, 3)}
    records = {s: None if s in failed else {**rec, "claims": [{**rec["claims"][0], "status": "pass" if s != 2 else "fail"}]}
               for s in (1, 2, 3)}
    return sweeps.aggregate("99_toy", "default", [1, 2, 3], "h", records, tasks, "2026-11-30 12:00 UTC"), current_hash


def test_report_shows_how_often_each_claim_held_on_other_seeds():
    text = report_markdown([_one_claim_record()], sweeps={"99_toy": _sweep()})
    assert "| 99_toy | seeds 1, 2, 3 at `default`, 2026-11-30 12:00 UTC | current | all ran |" in text
    assert "| holds on 2 of 3 seeds; measured 2 ± 0 |" in text
    assert "| no sweep yet |" in report_markdown([_one_claim_record()])


def test_report_marks_a_stale_sweep_and_names_failed_seeds():
    text = report_markdown([_one_claim_record()], sweeps={"99_toy": _sweep(current_hash="other", failed=(3,))})
    assert "| **stale** (sources changed since) | seed 3 failed: timed out after 9 s |" in text
    assert "holds on 1 of 3 seeds (1 missing); measured 2 ± 0 (stale: sources changed since the sweep)" in text
