"""Our TREC metrics equal trec_eval's (through ir-measures' pytrec_eval provider) on the same run
and qrels files, ties and unjudged documents included."""
import numpy as np
import pytest

from sparsity_core.retrieval import trec

ir_measures = pytest.importorskip("ir_measures")


def _random_run_and_qrels(seed, n_queries=30, n_docs=60):
    rng = np.random.default_rng(seed)
    run, qrels = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        docs = rng.choice(n_docs, size=rng.integers(5, 40), replace=False)
        # scores on a coarse grid: many ties, which trec_eval breaks by decreasing doc id
        run[qid] = {f"d{d}": float(rng.integers(0, 6)) / 2 for d in docs}
        judged = rng.choice(n_docs, size=rng.integers(1, 12), replace=False)
        qrels[qid] = {f"d{d}": int(rng.integers(0, 4)) for d in judged}
    return run, qrels


@pytest.mark.parametrize("seed", range(4))
def test_metrics_equal_ir_measures_on_written_files(seed, tmp_path):
    run, qrels = _random_run_and_qrels(seed)
    # the run is cut at depth 10, as a top-10 run is: trec_eval's recip_rank has no cutoff (pytrec_eval
    # ignores RR@10's), so RR@10 is RR on a depth-10 run
    run_file = trec.write_run(run, tmp_path / "run", depth=10)
    qrels_file = trec.write_qrels(qrels, tmp_path / "qrels")
    ours_run, ours_qrels = trec.read_run(run_file), trec.read_qrels(qrels_file)
    theirs_run = list(ir_measures.read_trec_run(str(run_file)))
    theirs_qrels = list(ir_measures.read_trec_qrels(str(qrels_file)))
    pairs = [(ir_measures.nDCG @ 10, trec.ndcg_per_query, 10), (ir_measures.RR @ 10, trec.rr_per_query, 10),
             (ir_measures.R @ 5, trec.recall_per_query, 5), (ir_measures.nDCG @ 3, trec.ndcg_per_query, 3)]
    theirs = {}
    # trec_eval itself (pytrec_eval): ir-measures' default for RR@k is the MS MARCO script, which
    # orders tied documents by increasing id
    for m in ir_measures.pytrec_eval.iter_calc([m for m, _, _ in pairs], theirs_qrels, theirs_run):
        theirs[(str(m.measure), m.query_id)] = m.value
    compared = 0
    for measure, ours_fn, cutoff in pairs:
        ours = ours_fn(ours_run, ours_qrels, cutoff)
        for qid, value in ours.items():
            assert value == pytest.approx(theirs[(str(measure), qid)], abs=1e-12), (str(measure), qid)
            compared += 1
    assert compared > 60
