"""Query throughput of BM25 top-10 search: the eager exhaustive scorer, bm25s (numpy and numba
backends) and the compiled exhaustive, MaxScore and Block-Max Pruning loops, over an index grown
with distractor passages.

    OMP_NUM_THREADS=1 python ci/bench_retrieval.py                      # 0, 32k, all distractors (~2 min)
    python ci/bench_retrieval.py --distractors 0 5000 --queries 100     # quick
    python ci/bench_retrieval.py --plot bench.png                       # + queries/s against index size

Every scorer runs on one thread in one process, on the same tokens (``sparsity_core.retrieval.tokenize``)
and the Python-docs test queries (verbatim ones dropped); BM25 Lucene, k1 = 1.5, b = 0.75. The
compiled loops (``sparsity_core.retrieval.compiled``) search an 8-bit impact index in the documents'
own order, so their top 10 is the quantised ranking; the table gives the share of queries whose
top-10 set equals the eager scorer's, and the mean share of the query terms' postings each
compiled method scored.

Measured on the project's 2-core Xeon (one run of ``OMP_NUM_THREADS=1 python ci/bench_retrieval.py
--distractors 0 130562``; queries/s, in brackets the share of queries whose top-10 set equals the
eager scorer's; this machine's timings vary by up to 2x between runs):

========  ============  ===========  ============  ============  ===========  ===========  =============  ========
docs      eager         bm25s numpy  bm25s numba   exhaustive    maxscore     bmp          maxscore work  bmp work
========  ============  ===========  ============  ============  ===========  ===========  =============  ========
8,205      9,712 (100%)  3,849 (97%)  51,068 (96%)  30,615 (91%)  9,452 (91%)  9,588 (91%)          38.2%     54.3%
138,767    1,319 (100%)    175 (89%)   7,147 (90%)  15,077 (87%)  3,775 (87%)  2,358 (87%)          53.4%     37.2%
========  ============  ===========  ============  ============  ===========  ===========  =============  ========

The compiled exhaustive loop (term at a time into an integer array, each touched document offered
to a top-10 heap) is the fastest scorer at 138,767 documents, 2x bm25s's numba backend; MaxScore
and BMP score half or a third of the postings but pay more per posting than they save: a query's
terms have only ~7,700 postings here (Chapter 8's "Going fast"). bm25s's numba backend leads on
the 8,205 documentation entries alone. Top-10 sets differ at ties of the 10th place: 8-bit impacts
tie more often than float scores.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from sparsity_core.bench import hardware_fingerprint, time_call

SCORERS = ("eager", "bm25s numpy", "bm25s numba", "exhaustive", "maxscore", "block_max_pruning")


def measure(n_distractors: int, n_queries: int | None, repeat: int) -> dict:
    """Queries/s of every scorer on the benchmark plus ``n_distractors`` passages."""
    import bm25s

    from sparsity_core.data.retrieval import load_distractors, load_pydocs
    from sparsity_core.retrieval import BM25, tokenize
    from sparsity_core.retrieval.compiled import batch_search, compile_index
    from sparsity_core.retrieval.pruning import ImpactIndex, query_terms

    bench = load_pydocs()
    docs = bench.docs + load_distractors(n_distractors)
    doc_tokens = [tokenize(d) for d in docs]
    query_tokens = [tokenize(q) for q in bench.texts("test")[:n_queries]]
    eager = BM25(k1=1.5, b=0.75, method="lucene").fit(doc_tokens)
    index = ImpactIndex(eager.weights, bits=8)
    flat = compile_index(index)
    queries = [query_terms(eager.vocab, q) for q in query_tokens]
    calls = {"eager": lambda: eager.search(query_tokens, k=10)[0]}
    for backend in ("numpy", "numba"):
        ref = bm25s.BM25(k1=1.5, b=0.75, method="lucene", backend=backend)
        ref.index(doc_tokens, show_progress=False)
        calls[f"bm25s {backend}"] = (lambda r=ref: r.retrieve(query_tokens, k=10, show_progress=False, n_threads=1)[0])
    results = {}
    for method in ("exhaustive", "maxscore", "block_max_pruning"):
        calls[method] = (lambda m=method: batch_search(index, queries, 10, method=m, flat=flat).docs)
        results[method] = batch_search(index, queries, 10, method=method, flat=flat)
    row = {"documents": len(docs), "queries": len(queries)}
    reference = calls["eager"]()
    for name, fn in calls.items():
        row[name] = len(queries) / time_call(fn, repeat=repeat, warmup=1).median
        top = fn()
        row[name + " same"] = float(np.mean([set(top[i][:10]) == set(reference[i]) for i in range(len(queries))]))
    for method in ("maxscore", "block_max_pruning"):
        row[method + " work"] = float(np.mean(results[method].scored / np.maximum(results["exhaustive"].scored, 1)))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--distractors", type=int, nargs="+", default=[0, 32_000, 130_562])
    ap.add_argument("--queries", type=int, default=None, help="first N test queries (default: all)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--plot", default=None, help="save queries/s against index size as this PNG")
    args = ap.parse_args(argv)
    print(hardware_fingerprint())
    print(f"\nqueries/s (median of {args.repeat}), top 10, one thread; 'same': share of queries whose top-10 set "
          "equals the eager scorer's; 'work': postings scored / exhaustive")
    print(f"{'docs':>8} | " + " ".join(f"{s:>17}" for s in SCORERS) + f" | {'maxscore work':>13} {'bmp work':>8}")
    rows = []
    for n in args.distractors:
        r = measure(n, args.queries, args.repeat)
        rows.append(r)
        print(f"{r['documents']:>8} | " + " ".join(f"{r[s]:>9,.0f} ({r[s + ' same']:>4.0%})" for s in SCORERS)
              + f" | {r['maxscore work']:>13.1%} {r['block_max_pruning work']:>8.1%}")
    if args.plot:
        plot(rows, args.plot)
        print(f"\nwrote {args.plot}")
    return 0


def plot(rows: list[dict], path: str) -> None:
    """Queries/s against the number of documents, one line per scorer."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    ns = [r["documents"] for r in rows]
    for name in SCORERS:
        ax.plot(ns, [r[name] for r in rows], marker="o", ls="-" if name in ("maxscore", "block_max_pruning") else "--",
                label=name)
    ax.set(xscale="log", yscale="log", xlabel="documents in the index", ylabel="queries per second (one thread)",
           title="BM25 top-10 search")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
