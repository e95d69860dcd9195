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
    assert "| 1 | 0 | 1 | 0 |" in text
    assert "**Not reproduced:** too small." in text
    assert "In all: 1 claims, 0 pass." in text


def test_committed_report_page_is_fresh():
    r = subprocess.run([sys.executable, "ci/build_report.py", "--check"], cwd=paths.repo_root(),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
