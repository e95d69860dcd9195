"""``data/paper_values.csv``: the paper tables a claim checks, read and validated in one place."""
import json
import shutil

import pytest

from sparsity_core import paths
from sparsity_core.claims import load_paper_claims
from sparsity_core.paper_values import VALUES_COLUMNS, load_paper_values, paper_values_csv, parse_params

HEADER = ",".join(VALUES_COLUMNS) + "\n"


def test_parse_params():
    assert parse_params("s=6;theta=6") == {"s": 6, "theta": 6}
    assert parse_params("sizes=64-256-256-10; sparsity=0.9 ;layer=fc1") == {
        "sizes": "64-256-256-10", "sparsity": 0.9, "layer": "fc1"}
    assert parse_params("") == {}
    for bad in ("s6", "=6", "s=1;s=2"):
        with pytest.raises(ValueError):
            parse_params(bad)


def test_the_repository_file_is_valid_and_each_claim_is_read_by_its_chapter():
    values = load_paper_values()
    claims = load_paper_claims()
    assert values, "data/paper_values.csv is empty"
    for claim in {v.claim for v in values}:
        nb = json.loads((paths.repo_root() / "book" / f"{claims[claim].chapter}.ipynb").read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        assert f'load_paper_values("{claim}")' in code, f"{claims[claim].chapter} never reads {claim}'s paper values"


def test_the_counts_the_chapters_check():
    # the checks' texts name these counts: 11 entries of tables 1B-1D, 14 script values
    # (+ 1 shown), 9 ERK densities and 2 printed epsilons
    by = {}
    for v in load_paper_values():
        by.setdefault((v.claim, v.table), []).append(v)
    assert sum(len(by[k]) for k in by if k[0] == "sdr-subsampling-tables") == 11
    assert len(by[("sdr-union-segment", "union script")]) == 14
    assert len(by[("sdr-union-segment", "union script, evalf drift")]) == 1
    assert len(by[("pr4-erk-densities", "ERK densities")]) == 9
    assert len(by[("pr4-erk-densities", "ERK epsilon")]) == 2


def test_one_claims_rows_and_the_printed_text():
    rows = load_paper_values("sdr-subsampling-tables")
    assert {v.claim for v in rows} == {"sdr-subsampling-tables"}
    entry = next(v for v in rows if v.params == {"n": 100000, "a": 2000, "s": 20, "theta": 10})
    assert entry.text == "1.54192767258720e-12" and entry.value == pytest.approx(1.5419276725872e-12, rel=1e-15)


@pytest.fixture
def files(tmp_path):
    claims = tmp_path / "claims.csv"
    shutil.copy(paths.paper_claims_csv(), claims)
    return tmp_path / "values.csv", claims


@pytest.mark.parametrize("body, match", [
    ("claim,table,params,value\nsdr-capacity,t,,1\n", "columns"),
    (HEADER + "no-such-claim,t,,1,x\n", "not in the claims file"),
    (HEADER + "sdr-capacity,t,,one,x\n", "not a number"),
    (HEADER + "sdr-capacity,t,,nan,x\n", "finite"),
    (HEADER + "sdr-capacity,t,,1\n", "number of fields"),
    (HEADER + "sdr-capacity,t,n=1,1,x\nsdr-capacity,t,n=1,2,x\n", "second entry"),
    (HEADER + "sdr-capacity,t,n,1,x\n", "name=value"),
])
def test_bad_files_are_refused(files, body, match):
    values, claims = files
    values.write_text(body)
    with pytest.raises(ValueError, match=match):
        load_paper_values(path=values, claims_path=claims)


def test_a_claim_without_entries_is_refused(files):
    values, claims = files
    values.write_text(HEADER + "sdr-capacity,t,n=1,1,x\n")
    assert len(load_paper_values(path=values, claims_path=claims)) == 1
    with pytest.raises(ValueError, match="no entries"):
        load_paper_values("sdr-union-size", path=values, claims_path=claims)


def test_default_path():
    assert paper_values_csv() == paths.data_dir() / "paper_values.csv"
