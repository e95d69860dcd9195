"""TREC run / qrels files round-trip; graded metrics equal hand-computed values."""
import math

import pytest

from sparsity_core.retrieval.trec import (ndcg_per_query, ranking, read_qrels, read_run, recall_per_query, rr_per_query, write_qrels,
                                          write_run)

RUN = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0, "d4": 0.5},
       "q2": {"a": 1.0, "b": 1.0, "c": 0.25}}
QRELS = {"q1": {"d2": 2, "d4": 1, "d9": 1},          # d9 judged relevant, never retrieved
         "q2": {"a": 1},
         "q3": {"x": 1},                             # a query the run lacks
         "q4": {"y": 0}}                             # no relevant document: skipped


def test_ranking_breaks_ties_by_decreasing_doc_id():
    assert ranking(RUN["q1"]) == ["d1", "d2", "d3", "d4"]
    assert ranking(RUN["q2"]) == ["b", "a", "c"]     # a and b tie at 1.0: b first, as trec_eval


def test_run_and_qrels_files_round_trip(tmp_path):
    path = write_run(RUN, tmp_path / "run.txt", tag="bm25")
    lines = path.read_text().splitlines()
    assert lines[0] == "q1 Q0 d1 1 3.0 bm25" and lines[4] == "q2 Q0 b 1 1.0 bm25"
    assert read_run(path) == RUN
    assert read_qrels(write_qrels(QRELS, tmp_path / "qrels.txt")) == QRELS
    cut = read_run(write_run(RUN, tmp_path / "cut.txt", depth=2))
    assert cut == {"q1": {"d1": 3.0, "d2": 2.0}, "q2": {"b": 1.0, "a": 1.0}}


def test_ndcg_by_hand():
    got = ndcg_per_query(RUN, QRELS, k=3)
    assert set(got) == {"q1", "q2", "q3"}
    # q1: top 3 = d1 (0), d2 (2), d3 (0); ideal gains 2, 1, 1
    dcg = 2 / math.log2(3)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert got["q1"] == pytest.approx(dcg / idcg, rel=1e-12)
    assert got["q2"] == pytest.approx((1 / math.log2(3)) / 1.0, rel=1e-12)     # a is second after the tie
    assert got["q3"] == 0.0


def test_rr_and_recall_by_hand():
    assert rr_per_query(RUN, QRELS, k=10) == {"q1": 0.5, "q2": 0.5, "q3": 0.0}
    assert rr_per_query(RUN, QRELS, k=1) == {"q1": 0.0, "q2": 0.0, "q3": 0.0}
    rec = recall_per_query(RUN, QRELS, k=4)
    assert rec == {"q1": pytest.approx(2 / 3), "q2": 1.0, "q3": 0.0}


@pytest.mark.parametrize("call", [
    lambda p: write_run({"q 1": {"d": 1.0}}, p),
    lambda p: write_run({"q1": {"d": float("nan")}}, p),
    lambda p: write_run({"q1": {"d": 1.0}}, p, depth=0),
    lambda p: write_qrels({"q1": {"d": 1.5}}, p),
    lambda p: ndcg_per_query(RUN, QRELS, k=0),
])
def test_bad_input(call, tmp_path):
    with pytest.raises((ValueError, TypeError)):
        call(tmp_path / "f.txt")


def test_malformed_files(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("q1 Q0 d1 1 2.0\n")
    with pytest.raises(ValueError, match="6 fields"):
        read_run(bad)
    bad.write_text("q1 d1 1\n")
    with pytest.raises(ValueError, match="4 fields"):
        read_qrels(bad)
