import re
import subprocess
import sys

import pytest

from sparsity_core import paths
from sparsity_core.report import (RUNTIME_LEAD, chapter_records, cited_keys, coverage_markdown, load_seed_papers,
                                  report_markdown, runtime_paragraph, seed_coverage, with_runtime)


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


def test_the_run_time_paragraph_comes_from_the_record_and_replaces_only_itself():
    rec = {"stamp": {"seconds": 85.9, "scale": "default", "threads": 2, "cpu": "Some CPU",
                     "date": "2026-12-01 13:38 UTC"}}
    para = runtime_paragraph(rec)
    assert para.startswith(RUNTIME_LEAD + " 1 min 26 s at `SCALE=\"default\"` on 2 threads (Some CPU)")
    assert "2026-12-01" in para and "13:38" not in para
    assert runtime_paragraph({"stamp": {**rec["stamp"], "seconds": 39.6}}).startswith(RUNTIME_LEAD + " 40 s at")
    md = "intro\n\n**Prerequisites.** none.\n\n**Run time.** old words\nsecond line\n\nafter"
    assert with_runtime(md, para) == f"intro\n\n**Prerequisites.** none.\n\n{para}\n\nafter"
    assert with_runtime("**Run time.** at the end", para) == para
    assert with_runtime("no such paragraph; **Run time.** mid-line", para) is None


def test_cited_keys_reads_every_cite_role():
    md = "A {cite}`a2020x` and {cite}`b2021y, c2022z`; {cite:p}`d2023w` but not `e` or {doc}`f`."
    assert cited_keys(md) == {"a2020x", "b2021y", "c2022z", "d2023w"}


def test_seed_coverage_prefers_a_claim_then_a_citation_of_the_same_chapter():
    seeds = [{"chapter": "02", "title": "T1", "bibkey": "k1"}, {"chapter": "02", "title": "T2", "bibkey": "k2"},
             {"chapter": "02", "title": "T3", "bibkey": "k3"}, {"chapter": "03", "title": "T4", "bibkey": "k1"}]
    cov = seed_coverage(seeds, {"02_pruning": {"k1"}}, {"02_pruning": {"k1", "k2"}, "03_llm": {"k3"}})
    assert cov["02"] == {"claim": ["T1"], "discussed": ["T2"], "absent": ["T3"]}
    # another chapter's claim or citation does not cover a paper of this one
    assert cov["03"] == {"claim": [], "discussed": [], "absent": ["T4"]}
    text = "\n".join(coverage_markdown(cov))
    assert "| 02 | 3 | 1 | 1 | 1 |" in text and "02: *T3*" in text and "03: *T4*" in text


def test_seed_papers_file_rows_are_checked(tmp_path):
    bad = tmp_path / "seeds.csv"
    bad.write_text("chapter,title,bibkey\n2,T,k\n", encoding="utf-8")
    with pytest.raises(ValueError, match="two-digit chapter"):
        load_seed_papers(bad)


def test_every_seed_paper_has_a_bibliography_entry():
    bib = (paths.repo_root() / "book" / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M))
    rows = load_seed_papers(paths.data_dir() / "seed_papers.csv")
    assert rows and not [r["bibkey"] for r in rows if r["bibkey"] not in keys]
    assert len({(r["chapter"], r["title"]) for r in rows}) == len(rows)


def test_the_teaching_page_run_time_table_is_written_between_its_markers():
    from sparsity_core.report import RUNTIMES_BEGIN, RUNTIMES_END, runtime_table, with_runtime_table

    recs = [{"chapter": "01_a", "stamp": {"seconds": 59.6, "threads": 2, "cpu": "CPU", "date": "2026-12-01 10:00 UTC"}},
            {"chapter": "02_b", "stamp": {"seconds": 125.0, "threads": 2, "cpu": "CPU", "date": "2026-12-01 11:00 UTC"}}]
    table = runtime_table(recs)
    assert "| [01_a](01_a.ipynb) | 1 min 00 s | 2 | CPU, 2026-12-01 |" in table
    assert "All 2 notebooks: 3 min 05 s in all" in table
    page = f"intro\n{RUNTIMES_BEGIN}\nold table\n{RUNTIMES_END}\nafter"
    new = with_runtime_table(page, table)
    assert "old table" not in new and table in new and new.startswith("intro\n") and new.endswith(f"{RUNTIMES_END}\nafter")
    assert with_runtime_table(new, table) == new
    assert with_runtime_table("no markers", table) is None
