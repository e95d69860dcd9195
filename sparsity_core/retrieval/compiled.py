"""Compiled query processing over an :class:`~.pruning.ImpactIndex`: exhaustive, MaxScore and
Block-Max Pruning as numba loops over a batch of queries, one query at a time on one thread.

:mod:`.pruning` holds the readable reference of each method (Python, one query); the loops here
run the same algorithms step for step, so they return the same top-``k`` (score descending,
document id ascending, ties included) **and** score the same number of postings; the tests
hold them to that. The point of this module is speed: Chapter 8 measures queries per second
against the eager scorer (:class:`~.bm25.BM25`), ``bm25s`` and each other.

* :func:`compile_index`: the index's posting lists concatenated into flat arrays
  (:class:`FlatIndex`), built once.
* :func:`batch_search`: ``(Q queries) -> (Q, k)`` documents and scores and ``(Q,)`` postings
  scored, with ``method`` one of :data:`COMPILED_METHODS`.

Methods: MaxScore (turtle1995query) and Block-Max Pruning (mallia2024faster); reference code
read for BMP: ``pisa-engine/BMP`` ``src/search.rs`` (``b_search``: ranges sorted by bound, the
``threshold > bound * alpha`` stop, here written ``bound < threshold / alpha`` as in
:func:`.pruning.block_max_pruning`).

Taught in: Chapter 8, "Retrieval".
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .. import checks
from .pruning import ImpactIndex, SearchResult

__all__ = ["FlatIndex", "BatchResult", "compile_index", "batch_search", "COMPILED_METHODS"]

#: The methods :func:`batch_search` runs compiled.
COMPILED_METHODS = ("exhaustive", "maxscore", "block_max_pruning")


@dataclass(frozen=True)
class FlatIndex:
    """An :class:`ImpactIndex`'s arrays, flat (all int64).

    Attributes:
        ptr: ``(V + 1,)`` term ``t``'s postings are ``docs[ptr[t]:ptr[t + 1]]`` (increasing) and
            ``impacts[ptr[t]:ptr[t + 1]]``.
        docs, impacts: ``(P,)`` all postings.
        max_impact: ``(V,)``.
        range_ptr, range_ids, range_max: ``(V + 1,)``, ``(R_nnz,)``, ``(R_nnz,)``: term ``t``'s
            document id ranges and its largest impact in each (Block-Max Pruning's bounds).
        n_docs, n_ranges, doc_block: sizes.
    """

    ptr: np.ndarray
    docs: np.ndarray
    impacts: np.ndarray
    max_impact: np.ndarray
    range_ptr: np.ndarray
    range_ids: np.ndarray
    range_max: np.ndarray
    n_docs: int
    n_ranges: int
    doc_block: int


@dataclass(frozen=True)
class BatchResult:
    """Top-``k`` of ``Q`` queries.

    Attributes:
        docs: ``(Q, k)`` int64, best first; ``-1`` past ``found``.
        scores: ``(Q, k)`` int64; ``0`` past ``found``.
        found: ``(Q,)`` documents returned (``< k`` when fewer documents score above 0).
        scored: ``(Q,)`` postings whose impact was read to score documents.
        ranges: ``(Q,)`` document id ranges scored (Block-Max Pruning; 0 for the others).
    """

    docs: np.ndarray
    scores: np.ndarray
    found: np.ndarray
    scored: np.ndarray
    ranges: np.ndarray

    def result(self, i: int) -> SearchResult:
        """Query ``i`` as the reference methods return it."""
        n = int(self.found[i])
        return SearchResult(self.docs[i, :n].copy(), self.scores[i, :n].copy(), int(self.scored[i]),
                            int(self.ranges[i]))


def compile_index(index: ImpactIndex) -> FlatIndex:
    """Concatenate ``index``'s posting lists and range bounds into a :class:`FlatIndex`."""
    if not isinstance(index, ImpactIndex):
        raise TypeError(f"index must be an ImpactIndex (got {type(index).__name__})")
    lengths = np.array([len(d) for d in index.docs], dtype=np.int64)
    cat = (lambda xs: np.concatenate(xs).astype(np.int64) if xs else np.zeros(0, dtype=np.int64))
    by_term = index.range_max.tocsc()
    by_term.sort_indices()
    return FlatIndex(ptr=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                     docs=cat(index.docs), impacts=cat(index.impacts),
                     max_impact=index.max_impact.astype(np.int64),
                     range_ptr=by_term.indptr.astype(np.int64), range_ids=by_term.indices.astype(np.int64),
                     range_max=by_term.data.astype(np.int64), n_docs=index.n_docs,
                     n_ranges=index.range_max.shape[0], doc_block=index.doc_block)


def _flat_queries(flat: FlatIndex, queries: Sequence[Mapping[int, int]]):
    """``(qptr (Q+1,), terms, weights)`` of the queries, terms in each query's order; terms without
    postings dropped (as :meth:`ImpactIndex.query`, validated in bulk)."""
    if isinstance(queries, Mapping) or isinstance(queries, (str, bytes)):
        raise TypeError("queries must be a sequence of {term: weight} mappings (got one mapping)")
    qptr, terms, weights = [0], [], []
    for i, query in enumerate(queries):
        if not isinstance(query, Mapping):
            raise TypeError(f"queries[{i}] must be a {{term: weight}} mapping (got {type(query).__name__})")
        terms.extend(query.keys())
        weights.extend(query.values())
        qptr.append(len(terms))
    t, w = np.array(terms), np.array(weights)
    if len(t) and (t.dtype.kind not in "iu" or w.dtype.kind not in "iu"):
        raise TypeError("query terms and weights must be ints")
    n_terms = len(flat.ptr) - 1
    if len(t) and (t.min() < 0 or t.max() >= n_terms):
        raise ValueError(f"query terms must lie in [0, {n_terms - 1}]")
    if len(w) and w.min() < 1:
        raise ValueError("query weights must be ints >= 1")
    t, w = t.astype(np.int64), w.astype(np.int64)
    keep = (flat.ptr[t + 1] - flat.ptr[t]) > 0
    kept_before = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
    return kept_before[np.array(qptr, dtype=np.int64)], t[keep], w[keep]


def batch_search(index: ImpactIndex, queries: Sequence[Mapping[int, int]], k: int, *,
                 method: str = "maxscore", alpha: float = 1.0, flat: FlatIndex | None = None) -> BatchResult:
    """Top-``k`` of each query, compiled (see the module docstring).

    Args:
        index: the impact index.
        queries: ``Q`` mappings ``{term: positive int weight}``.
        k: results per query, ``1 <= k <= N``.
        method: one of :data:`COMPILED_METHODS`.
        alpha: Block-Max Pruning's stop factor, ``0 < alpha <= 1`` (1 is safe); other methods
            require 1.
        flat: ``compile_index(index)``, to reuse between calls (built here when ``None``).

    Returns:
        :class:`BatchResult`; ``result(i)`` equals ``pruning.METHODS[method](index, queries[i], k)``.
    """
    if not isinstance(index, ImpactIndex):
        raise TypeError(f"index must be an ImpactIndex (got {type(index).__name__})")
    if method not in COMPILED_METHODS:
        raise ValueError(f"method must be one of {COMPILED_METHODS} (got {method!r})")
    k = checks.integer(k, "k", lo=1, hi=index.n_docs)
    alpha = checks.real(alpha, "alpha", lo=0.0, hi=1.0, closed_low=False)
    if method != "block_max_pruning" and alpha != 1.0:
        raise ValueError(f"alpha applies to block_max_pruning only (got alpha={alpha} with {method})")
    flat = compile_index(index) if flat is None else flat
    if not isinstance(flat, FlatIndex) or flat.n_docs != index.n_docs or len(flat.ptr) != index.n_terms + 1:
        raise ValueError("flat must be compile_index(index) of this index")
    qptr, terms, weights = _flat_queries(flat, queries)
    n_q = len(qptr) - 1
    docs = np.full((n_q, k), -1, dtype=np.int64)
    scores = np.zeros((n_q, k), dtype=np.int64)
    found = np.zeros(n_q, dtype=np.int64)
    scored = np.zeros(n_q, dtype=np.int64)
    ranges = np.zeros(n_q, dtype=np.int64)
    kernels = _kernels()
    if method == "exhaustive":
        kernels["exhaustive"](flat.ptr, flat.docs, flat.impacts, flat.n_docs, qptr, terms, weights,
                              k, docs, scores, found, scored)
    elif method == "maxscore":
        kernels["maxscore"](flat.ptr, flat.docs, flat.impacts, flat.max_impact, qptr, terms, weights,
                            k, docs, scores, found, scored)
    else:
        kernels["block_max_pruning"](flat.ptr, flat.docs, flat.impacts, flat.range_ptr, flat.range_ids,
                                     flat.range_max, flat.n_ranges, flat.doc_block, flat.n_docs,
                                     qptr, terms, weights, k, float(alpha), docs, scores, found, scored, ranges)
    return BatchResult(docs, scores, found, scored, ranges)


@functools.cache
def _kernels() -> dict:
    """The compiled loops (compiled on the first call, a few seconds)."""
    import numba

    jit = numba.njit(cache=False, nogil=True)

    # --- the running top-k: a min-heap on (score, -doc); the root is the k-th best ------------
    @jit
    def worse(s1, d1, s2, d2):                  # (s1, d1) ranks below (s2, d2)
        return s1 < s2 or (s1 == s2 and d1 > d2)

    @jit
    def enters(hs, hd, n, k, s, d):
        return n < k or worse(hs[0], hd[0], s, d)

    @jit
    def swap(hs, hd, i, j):
        hs[i], hs[j] = hs[j], hs[i]
        hd[i], hd[j] = hd[j], hd[i]

    @jit
    def sift_down(hs, hd, n, i):
        while True:
            c = 2 * i + 1
            if c >= n:
                return
            if c + 1 < n and worse(hs[c + 1], hd[c + 1], hs[c], hd[c]):
                c += 1
            if worse(hs[c], hd[c], hs[i], hd[i]):
                swap(hs, hd, i, c)
                i = c
            else:
                return

    @jit
    def push(hs, hd, n, k, s, d):
        """Insert (s, d) if it enters; returns the new size."""
        if n < k:
            i = n
            hs[i], hd[i] = s, d
            while i > 0:
                p = (i - 1) // 2
                if worse(hs[i], hd[i], hs[p], hd[p]):
                    swap(hs, hd, i, p)
                    i = p
                else:
                    break
            return n + 1
        if worse(hs[0], hd[0], s, d):
            hs[0], hd[0] = s, d
            sift_down(hs, hd, n, 0)
        return n

    @jit
    def threshold(hs, n, k):
        return hs[0] if n == k else -1

    @jit
    def emit(hs, hd, n, q, docs, scores, found):
        order = np.argsort(hd[:n])                          # doc ascending, then stable by score
        order = order[np.argsort(-hs[:n][order], kind="mergesort")]
        for j in range(n):
            docs[q, j] = hd[order[j]]
            scores[q, j] = hs[order[j]]
        found[q] = n

    # --- exhaustive: term at a time into an accumulator -----------------------------------
    @jit
    def exhaustive(ptr, pdocs, pimp, n_docs, qptr, terms, weights, k, docs, scores, found, scored):
        acc = np.zeros(n_docs, dtype=np.int64)
        touched = np.empty(n_docs, dtype=np.int64)
        hs = np.empty(k, dtype=np.int64)
        hd = np.empty(k, dtype=np.int64)
        for q in range(len(qptr) - 1):
            m, count = 0, 0
            for j in range(qptr[q], qptr[q + 1]):
                t, w = terms[j], weights[j]
                for p in range(ptr[t], ptr[t + 1]):
                    d = pdocs[p]
                    if acc[d] == 0:
                        touched[m] = d
                        m += 1
                    acc[d] += w * pimp[p]
                count += ptr[t + 1] - ptr[t]
            n = 0
            for i in range(m):
                d = touched[i]
                if n < k or worse(hs[0], hd[0], acc[d], d):      # most documents fail this test: skip the call
                    n = push(hs, hd, n, k, acc[d], d)
                acc[d] = 0
            emit(hs, hd, n, q, docs, scores, found)
            scored[q] = count

    # --- MaxScore: as pruning.maxscore ------------------------------------------------------
    @jit
    def maxscore(ptr, pdocs, pimp, max_impact, qptr, terms, weights, k, docs, scores, found, scored):
        end = np.iinfo(np.int64).max
        hs = np.empty(k, dtype=np.int64)
        hd = np.empty(k, dtype=np.int64)
        for q in range(len(qptr) - 1):
            qt, qw = terms[qptr[q]:qptr[q + 1]], weights[qptr[q]:qptr[q + 1]]
            m = len(qt)
            ub = qw * max_impact[qt]
            order = np.argsort(ub, kind="mergesort")         # stable, as Python's sort
            lo = ptr[qt[order]]
            hi = ptr[qt[order] + 1]
            w = qw[order]
            pos = lo.copy()
            prefix = np.zeros(m + 1, dtype=np.int64)
            for i in range(m):
                prefix[i + 1] = prefix[i] + ub[order[i]]
            n, count, fe = 0, 0, 0
            while True:
                theta = threshold(hs, n, k)
                while fe < m and prefix[fe + 1] <= theta:
                    fe += 1
                if fe == m:
                    break
                doc = end
                for c in range(fe, m):
                    if pos[c] < hi[c] and pdocs[pos[c]] < doc:
                        doc = pdocs[pos[c]]
                if doc == end:
                    break
                score = 0
                for c in range(fe, m):
                    if pos[c] < hi[c] and pdocs[pos[c]] == doc:
                        score += w[c] * pimp[pos[c]]
                        count += 1
                        pos[c] += 1
                for c in range(fe - 1, -1, -1):
                    if not enters(hs, hd, n, k, score + prefix[c + 1], doc):
                        break
                    if pos[c] < hi[c] and pdocs[pos[c]] < doc:
                        pos[c] = lo[c] + np.searchsorted(pdocs[lo[c]:hi[c]], doc)
                    if pos[c] < hi[c] and pdocs[pos[c]] == doc:
                        score += w[c] * pimp[pos[c]]
                        count += 1
                n = push(hs, hd, n, k, score, doc)
            emit(hs, hd, n, q, docs, scores, found)
            scored[q] = count

    # --- Block-Max Pruning: as pruning.block_max_pruning --------------------------------------
    @jit
    def block_max_pruning(ptr, pdocs, pimp, range_ptr, range_ids, range_max, n_ranges, doc_block, n_docs,
                          qptr, terms, weights, k, alpha, docs, scores, found, scored, ranges):
        hs = np.empty(k, dtype=np.int64)
        hd = np.empty(k, dtype=np.int64)
        bounds = np.zeros(n_ranges, dtype=np.int64)
        acc = np.zeros(doc_block, dtype=np.int64)
        for q in range(len(qptr) - 1):
            qt, qw = terms[qptr[q]:qptr[q + 1]], weights[qptr[q]:qptr[q + 1]]
            bounds[:] = 0
            for j in range(len(qt)):
                for p in range(range_ptr[qt[j]], range_ptr[qt[j] + 1]):
                    bounds[range_ids[p]] += qw[j] * range_max[p]
            order = np.argsort(-bounds, kind="mergesort")    # bound descending, range ascending
            n, count, visited = 0, 0, 0
            for r in order:
                if bounds[r] == 0:
                    break
                if n == k:
                    theta = hs[0]
                    if bounds[r] < theta / alpha or (alpha == 1.0 and not enters(hs, hd, n, k, bounds[r], r * doc_block)):
                        break
                lo = r * doc_block
                hi = min(lo + doc_block, n_docs)
                acc[:] = 0
                for j in range(len(qt)):
                    t = qt[j]
                    a = ptr[t] + np.searchsorted(pdocs[ptr[t]:ptr[t + 1]], lo)
                    b = ptr[t] + np.searchsorted(pdocs[ptr[t]:ptr[t + 1]], hi)
                    for p in range(a, b):
                        acc[pdocs[p] - lo] += qw[j] * pimp[p]
                    count += b - a
                visited += 1
                for i in range(hi - lo):
                    if acc[i] != 0 and (n < k or worse(hs[0], hd[0], acc[i], lo + i)):
                        n = push(hs, hd, n, k, acc[i], lo + i)
            emit(hs, hd, n, q, docs, scores, found)
            scored[q] = count
            ranges[q] = visited

    return {"exhaustive": exhaustive, "maxscore": maxscore, "block_max_pruning": block_max_pruning}
