r"""TREC run and qrels files, and graded metrics computed from them (Chapter 8, "Retrieval").

A **run** maps each query id to ``{doc id: score}``; a **qrels** maps each query id to
``{doc id: relevance}`` (an int; > 0 is relevant). The files are the text formats every TREC
evaluator reads:

* run: ``qid Q0 docid rank score tag``, one line per retrieved document;
* qrels: ``qid 0 docid relevance``.

A query's ranking orders its documents by decreasing score, ties by decreasing doc id (string
order), the order ``trec_eval`` imposes whatever ranks a file states; :func:`ranking` is that
order, and every metric here reads it. For query ``q`` with ranking :math:`d_1, d_2, \dots` and
relevance :math:`\mathrm{rel}(d)` (0 when unjudged):

.. math::

    \mathrm{DCG@}k = \sum_{i \le k} \frac{\mathrm{rel}(d_i)}{\log_2(i + 1)}, \qquad
    \mathrm{nDCG@}k = \frac{\mathrm{DCG@}k}{\mathrm{IDCG@}k}

(linear gain, ``trec_eval``'s ``ndcg_cut``), IDCG from the judged documents sorted by relevance;
:math:`\mathrm{RR@}k = 1 / i` for the first relevant :math:`d_i` with :math:`i \le k` (else 0);
:math:`\mathrm{Recall@}k` = relevant documents in the top k over all relevant documents.
Queries of the qrels without any relevant document are skipped; a query of the qrels that the
run lacks scores 0. Metrics return ``{qid: value}`` so that paired comparisons stay per query,
hence their names (``*_per_query``); :mod:`sparsity_core.retrieval.metrics` holds the means over
queries of rankings held as arrays (``mrr_at_k``, ``recall_at_k``).

Taught in: Chapter 8, "Retrieval", which checks these metrics against ``trec_eval`` (pytrec_eval,
through ``ir-measures``); so do the tests.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from .. import checks

__all__ = ["write_run", "read_run", "write_qrels", "read_qrels", "ranking", "ndcg_per_query", "rr_per_query",
           "recall_per_query"]

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def _check_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ValueError(f"{name} must be a non-empty string without whitespace (got {value!r})")
    return value


def ranking(scores: Mapping[str, float]) -> list[str]:
    """Doc ids by decreasing score, ties by decreasing doc id (``trec_eval``'s order)."""
    by_id = sorted(scores, reverse=True)
    return sorted(by_id, key=lambda d: -float(scores[d]))


def write_run(run: Run, path: str | Path, *, tag: str = "sparsity_core", depth: int | None = None) -> Path:
    """Write ``run`` as a TREC run file (each query's :func:`ranking`, cut at ``depth``)."""
    _check_id(tag, "tag")
    if depth is not None:
        depth = checks.positive_int(depth, "depth")
    lines = []
    for qid in sorted(run):
        _check_id(qid, "query id")
        for rank, doc in enumerate(ranking(run[qid])[:depth], start=1):
            score = float(run[qid][doc])
            if not math.isfinite(score):
                raise ValueError(f"score of {doc!r} for query {qid!r} is {score}")
            lines.append(f"{qid} Q0 {_check_id(doc, 'doc id')} {rank} {score!r} {tag}")
    path = Path(path)
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path


def _records(path: str | Path, form: str):
    """The whitespace-split fields of each non-blank line, checked against ``form``'s field count."""
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        parts = line.split()
        if parts and len(parts) != len(form.split()):
            raise ValueError(f"{path}:{number}: a line has {len(form.split())} fields '{form}' (got {line!r})")
        if parts:
            yield parts


def read_run(path: str | Path) -> dict[str, dict[str, float]]:
    """``{qid: {docid: score}}`` from a TREC run file (ranks and tags are ignored)."""
    run: dict[str, dict[str, float]] = {}
    for qid, _, doc, _, score, _ in _records(path, "qid Q0 docid rank score tag"):
        run.setdefault(qid, {})[doc] = float(score)
    return run


def write_qrels(qrels: Qrels, path: str | Path) -> Path:
    """Write ``qrels`` as a TREC qrels file."""
    lines = []
    for qid in sorted(qrels):
        _check_id(qid, "query id")
        for doc in sorted(qrels[qid]):
            lines.append(f"{qid} 0 {_check_id(doc, 'doc id')} {checks.integer(qrels[qid][doc], 'relevance')}")
    path = Path(path)
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """``{qid: {docid: relevance}}`` from a TREC qrels file."""
    qrels: dict[str, dict[str, int]] = {}
    for qid, _, doc, rel in _records(path, "qid 0 docid relevance"):
        qrels.setdefault(qid, {})[doc] = int(rel)
    return qrels


def _per_query(run: Run, qrels: Qrels, k: int, metric) -> dict[str, float]:
    k = checks.positive_int(k, "k")
    out = {}
    for qid, judged in qrels.items():
        if not any(rel > 0 for rel in judged.values()):
            continue
        top = ranking(run.get(qid, {}))[:k]
        out[qid] = metric(top, judged, k)
    return out


def ndcg_per_query(run: Run, qrels: Qrels, k: int = 10) -> dict[str, float]:
    """``{qid: nDCG@k}`` with linear gains (module docstring)."""
    def ndcg(top, judged, k):
        dcg = sum(max(judged.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(top))
        ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:k]
        return dcg / sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return _per_query(run, qrels, k, ndcg)


def rr_per_query(run: Run, qrels: Qrels, k: int = 10) -> dict[str, float]:
    """``{qid: RR@k}``: reciprocal rank of the first relevant document in the top k (else 0)."""
    def rr(top, judged, k):
        return next((1.0 / (i + 1) for i, d in enumerate(top) if judged.get(d, 0) > 0), 0.0)
    return _per_query(run, qrels, k, rr)


def recall_per_query(run: Run, qrels: Qrels, k: int = 10) -> dict[str, float]:
    """``{qid: Recall@k}``: relevant documents in the top k over the query's relevant documents."""
    def recall(top, judged, k):
        relevant = {d for d, r in judged.items() if r > 0}
        return len(relevant.intersection(top)) / len(relevant)
    return _per_query(run, qrels, k, recall)
