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
