"""Cost of multi-vector retrieval's candidate stage: exact Chamfer scoring, MUVERA FDEs (encoding and
search) and the single-vector heuristic, and the batched FDE encoder against its per-text twin.

    OMP_NUM_THREADS=1 python ci/bench_multivector.py                     # 1k and 4k documents (~1 min)
    python ci/bench_multivector.py --docs 500 --queries 20               # quick

Token vectors are random unit vectors (128 dimensions, 40 per document, 16 per query, as in
Chapter 8 part 2's MiniLM setting): speed does not depend on what the vectors mean. Each row gives
milliseconds per query for scoring every document exactly (``chamfer_matrix``), for the FDE inner
products (documents encoded beforehand), and for the single-vector heuristic's nearest-vector search
(``token_knn_candidates``, 4 per query vector); then documents per second encoded into FDEs by
``FDE.encode_batch`` and by the per-text ``FDE.encode_document`` loop. The FDE is part 2's
configuration with R_reps = 10, k_sim = 4, d_proj = 16 (2,560 dimensions).

Measured on the project's 2-core Xeon (one run of ``OMP_NUM_THREADS=1 python ci/bench_multivector.py``):

========  ============  ========  =======  ==================  ===============
docs      chamfer ms/q  FDE ms/q  SV ms/q  FDE docs/s (batch)  (per-text loop)
========  ============  ========  =======  ==================  ===============
1,000             5.54      0.18    13.95               2,352            1,042
4,000            22.94      0.42    78.18               2,322            1,081
========  ============  ========  =======  ==================  ===============

Scoring FDEs is 30-55x cheaper than exact Chamfer and grows more slowly with the collection (one
2,560-dimensional inner product per document instead of 16 x 40 token products). The
single-vector heuristic is the slowest here because its nearest-vector search is exhaustive (a
partial sort of every query vector's 40 x N scores); systems run it on an approximate
nearest-neighbour index, which this benchmark does not have. Batched encoding is about 2x the
per-text loop: each text's encoding is already vectorised over its 40 vectors.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from sparsity_core.bench import hardware_fingerprint, time_call

DIM, DOC_VECTORS, QUERY_VECTORS = 128, 40, 16


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def measure(n_docs: int, n_queries: int, repeat: int) -> dict:
    """Milliseconds per query of each candidate stage and FDE encoding throughput at ``n_docs``."""
    from sparsity_core.retrieval.muvera import FDE, FDEConfig, chamfer_matrix, token_knn_candidates

    rng = np.random.default_rng(0)
    docs, d_len = _unit(rng, n_docs * DOC_VECTORS), np.full(n_docs, DOC_VECTORS)
    queries, q_len = _unit(rng, n_queries * QUERY_VECTORS), np.full(n_queries, QUERY_VECTORS)
    enc = FDE(FDEConfig(dim=DIM, reps=10, k_sim=4, proj_dim=16))
    doc_fde = enc.encode_batch(docs, d_len, document=True)
    per_query = {
        "chamfer": time_call(lambda: chamfer_matrix(queries, q_len, docs, d_len), repeat=repeat).median,
        "fde": time_call(lambda: enc.encode_batch(queries, q_len, document=False) @ doc_fde.T, repeat=repeat).median,
        "sv": time_call(lambda: token_knn_candidates(queries, q_len, docs, d_len, 4), repeat=repeat).median,
    }
    loop_docs = min(n_docs, 200)                                       # the per-text loop is slow
    batch_s = time_call(lambda: enc.encode_batch(docs, d_len, document=True), repeat=repeat).median
    texts = np.split(docs[:loop_docs * DOC_VECTORS], loop_docs)
    loop_s = time_call(lambda: [enc.encode_document(t) for t in texts], repeat=repeat).median
    return {"docs": n_docs, **{k: 1e3 * v / n_queries for k, v in per_query.items()},
            "encode batch": n_docs / batch_s, "encode loop": loop_docs / loop_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(hardware_fingerprint())
    print(f"{'docs':>8} {'chamfer ms/q':>13} {'FDE ms/q':>9} {'SV ms/q':>8} {'FDE docs/s (batch)':>19} "
          f"{'(per-text loop)':>16}")
    for n in args.docs:
        r = measure(n, args.queries, args.repeat)
        print(f"{r['docs']:>8,} {r['chamfer']:>13.2f} {r['fde']:>9.2f} {r['sv']:>8.2f} {r['encode batch']:>19,.0f} "
              f"{r['encode loop']:>16,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
