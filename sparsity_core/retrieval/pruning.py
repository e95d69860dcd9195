"""An impact-quantised inverted index and safe dynamic pruning: exhaustive, MaxScore, WAND,
Block-Max WAND and Block-Max Pruning, each counting the postings it scores.

Scores are integers: every BM25 weight is quantised to ``bits`` bits against the largest
weight of the index (impact-ordered indexes store such impacts, anh2001vector), a query term
has an integer weight (its count), and a document's score is
:math:`\\sum_t q_t\\, \\mathrm{impact}_{t,d}`. Integer sums make the safety claims exact: a safe
method returns exactly the top-``k`` of :func:`exhaustive` (score descending, then document id
ascending), ties included.

* :func:`exhaustive`: score every posting of every query term (term at a time).
* :func:`maxscore` (turtle1995query): terms sorted by upper bound; the "non-essential" terms,
  whose bounds sum to at most the threshold, never start a candidate and are probed only for
  candidates that can still enter.
* :func:`wand` (broder2003efficient): document at a time; the pivot is the first document where
  the sorted cursors' upper bounds exceed the threshold; cursors skip to it.
* :func:`block_max_wand` (ding2011faster): WAND whose pivot is then checked against the
  block-max bounds of the posting chunks holding it, skipping whole chunks.
* :func:`block_max_pruning` (mallia2024faster): documents in fixed id ranges; each range's bound
  :math:`\\sum_t q_t \\max_{d \\in \\text{range}} \\mathrm{impact}_{t,d}`; ranges visited by
  decreasing bound, stopping when the bound falls below ``threshold / alpha`` (safe at
  ``alpha = 1``; ``alpha < 1`` stops earlier and may miss documents).

These are reference implementations in Python and NumPy (the counts are the point); the
compiled loops of :mod:`.compiled` run exhaustive, MaxScore and Block-Max Pruning step for step
as these do, for speed.

Taught in: Chapter 8, "Retrieval".
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from .. import checks

__all__ = ["ImpactIndex", "SearchResult", "exhaustive", "maxscore", "wand", "wand_pivot", "block_max_wand",
           "block_max_pruning", "METHODS", "query_terms"]


@dataclass(frozen=True)
class SearchResult:
    """Top-k documents (score descending, id ascending), their integer scores, the number of
    postings whose impact the method read to score documents, and (Block-Max Pruning only, else
    0) the number of document id ranges it scored."""

    docs: np.ndarray
    scores: np.ndarray
    scored: int
    ranges: int = 0


class ImpactIndex:
    """Posting lists of quantised impacts with the metadata the pruning methods need.

    Args:
        weights: ``(N, V)`` non-negative document-term weights (a ``scipy.sparse`` matrix, e.g.
            ``BM25.weights``); column ``t`` is term ``t``'s posting list.
        bits: impact precision: weights map to ``round(w / w_max * (2^bits - 1))`` (postings that
            round to 0 are dropped).
        chunk: postings per chunk for the block-max bounds of Block-Max WAND.
        doc_block: documents per id range for Block-Max Pruning.

    Attributes:
        docs[t], impacts[t]: int64 arrays, term ``t``'s documents (increasing) and impacts.
        max_impact: ``(V,)`` each term's largest impact.
        chunk_last[t], chunk_max[t]: last document and largest impact of each chunk of ``t``.
        range_max: ``scipy.sparse.csr_array`` ``(ranges, V)``, the largest impact of each term in
            each document id range.
    """

    def __init__(self, weights, *, bits: int = 8, chunk: int = 64, doc_block: int = 64):
        w = sp.csc_array(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] == 0:
            raise ValueError("weights must be a non-empty (N, V) matrix")
        if w.nnz and (not np.isfinite(w.data).all() or (w.data < 0).any()):
            raise ValueError("weights must be finite and >= 0")
        self.bits = checks.integer(bits, "bits", lo=1, hi=30)
        self.chunk = checks.positive_int(chunk, "chunk")
        self.doc_block = checks.positive_int(doc_block, "doc_block")
        self.n_docs, self.n_terms = w.shape
        top = float(w.data.max()) if w.nnz else 1.0
        levels = (1 << self.bits) - 1
        w.sort_indices()
        self.docs, self.impacts, self.chunk_last, self.chunk_max = [], [], [], []
        rows, cols, vals = [], [], []
        for t in range(self.n_terms):
            d = w.indices[w.indptr[t]:w.indptr[t + 1]].astype(np.int64)
            imp = np.rint(w.data[w.indptr[t]:w.indptr[t + 1]] / top * levels).astype(np.int64)
            d, imp = d[imp > 0], imp[imp > 0]
            self.docs.append(d)
            self.impacts.append(imp)
            starts = np.arange(0, len(d), self.chunk)
            self.chunk_last.append(d[np.minimum(starts + self.chunk, len(d)) - 1] if len(d) else d)
            self.chunk_max.append(np.maximum.reduceat(imp, starts) if len(d) else imp)
            if len(d):
                r = d // self.doc_block
                uniq, first = np.unique(r, return_index=True)
                rows.append(uniq)
                cols.append(np.full(len(uniq), t))
                vals.append(np.maximum.reduceat(imp, first))
        self.max_impact = np.array([imp.max() if len(imp) else 0 for imp in self.impacts], dtype=np.int64)
        n_ranges = -(-self.n_docs // self.doc_block)
        cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64))
        self.range_max = sp.csr_array((cat(vals), (cat(rows), cat(cols))), shape=(n_ranges, self.n_terms))

    def query(self, term_weights: Mapping[int, int]) -> dict[int, int]:
        """Validated ``{term: positive int weight}``; terms with no posting are dropped."""
        out = {}
        for t, qw in term_weights.items():
            t = checks.integer(t, "term", lo=0, hi=self.n_terms - 1)
            qw = checks.positive_int(qw, f"weight of term {t}")
            if len(self.docs[t]):
                out[t] = qw
        return out


def query_terms(vocab: Mapping[str, int], tokens: Sequence[str]) -> dict[int, int]:
    """A tokenized query as ``{term id: count}`` over the terms ``vocab`` knows (``BM25.vocab``):
    the query vector of BM25 (each occurrence of a term adds its weight once more)."""
    if isinstance(tokens, str):
        raise TypeError("tokens must be a list of str tokens, not a str; tokenize the query first")
    out: dict[int, int] = {}
    for tok in tokens:
        t = vocab.get(tok)
        if t is not None:
            out[t] = out.get(t, 0) + 1
    return out


class _TopK:
    """The running top-k, ordered as the exhaustive ranking: (score desc, doc asc)."""

    def __init__(self, k: int):
        self.k, self.heap = k, []            # min-heap of (score, -doc): the root is the k-th best

    @property
    def threshold(self) -> int:
        """The k-th best score so far (-1 while fewer than k documents are held)."""
        return self.heap[0][0] if len(self.heap) == self.k else -1

    def enters(self, score: int, doc: int) -> bool:
        return len(self.heap) < self.k or (score, -doc) > self.heap[0]

    def push(self, score: int, doc: int) -> None:
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, (score, -doc))
        elif (score, -doc) > self.heap[0]:
            heapq.heapreplace(self.heap, (score, -doc))

    def result(self, scored: int, ranges: int = 0) -> SearchResult:
        best = sorted(((s, -nd) for s, nd in self.heap), key=lambda p: (-p[0], p[1]))
        return SearchResult(np.array([d for _, d in best], dtype=np.int64),
                            np.array([s for s, _ in best], dtype=np.int64), scored, ranges)


def _check(index: ImpactIndex, query: Mapping[int, int], k: int) -> tuple[dict[int, int], int]:
    if not isinstance(index, ImpactIndex):
        raise TypeError(f"index must be an ImpactIndex (got {type(index).__name__})")
    return index.query(query), checks.integer(k, "k", lo=1, hi=index.n_docs)


def exhaustive(index: ImpactIndex, query: Mapping[int, int], k: int) -> SearchResult:
    """Score every posting of every query term; the reference ranking."""
    q, k = _check(index, query, k)
    acc = np.zeros(index.n_docs, dtype=np.int64)
    scored = 0
    for t, qw in q.items():
        np.add.at(acc, index.docs[t], qw * index.impacts[t])
        scored += len(index.docs[t])
    hits = np.flatnonzero(acc)
    order = np.lexsort((hits, -acc[hits]))[:k]
    return SearchResult(hits[order], acc[hits[order]], scored)


class _Cursor:
    def __init__(self, index: ImpactIndex, t: int, qw: int):
        self.docs, self.imp, self.qw = index.docs[t], index.impacts[t], qw
        self.ub = qw * int(index.max_impact[t])
        self.chunk_last, self.chunk_max, self.chunk = index.chunk_last[t], index.chunk_max[t], index.chunk
        self.pos = 0

    @property
    def doc(self) -> int:
        return int(self.docs[self.pos]) if self.pos < len(self.docs) else _END

    def seek(self, target: int) -> None:
        """Move to the first posting with document >= target."""
        if self.doc < target:
            self.pos = int(np.searchsorted(self.docs, target, side="left"))

    def score(self) -> int:
        return self.qw * int(self.imp[self.pos])

    def block_ub(self, target: int) -> tuple[int, int]:
        """``(bound, last doc)`` of the chunk that would hold ``target``."""
        c = int(np.searchsorted(self.chunk_last, target, side="left"))
        if c >= len(self.chunk_last):
            return 0, _END
        return self.qw * int(self.chunk_max[c]), int(self.chunk_last[c])


_END = np.iinfo(np.int64).max


def maxscore(index: ImpactIndex, query: Mapping[int, int], k: int) -> SearchResult:
    """MaxScore: only essential terms start candidates; non-essential terms are probed only
    while the candidate can still beat the threshold."""
    q, k = _check(index, query, k)
    cursors = sorted((_Cursor(index, t, qw) for t, qw in q.items()), key=lambda c: c.ub)
    prefix = np.cumsum([0] + [c.ub for c in cursors])                    # bound of the first i terms
    top, scored = _TopK(k), 0
    first_essential = 0
    while True:
        theta = top.threshold
        while first_essential < len(cursors) and prefix[first_essential + 1] <= theta:
            first_essential += 1
        essential = cursors[first_essential:]
        if not essential:
            break
        doc = min(c.doc for c in essential)
        if doc == _END:
            break
        score = 0
        for c in essential:
            if c.doc == doc:
                score += c.score()
                scored += 1
                c.pos += 1
        for i in range(first_essential - 1, -1, -1):                    # largest bounds first
            if not top.enters(score + int(prefix[i + 1]), doc):
                break
            c = cursors[i]
            c.seek(doc)
            if c.doc == doc:
                score += c.score()
                scored += 1
        if top.enters(score, doc):
            top.push(score, doc)
    return top.result(scored)


def wand_pivot(docs: Sequence[int], bounds: Sequence[int], threshold: int) -> int | None:
    """WAND's pivot (broder2003efficient, the pivot step of the WAND iterator): with the cursors sorted by their current
    document, the first cursor at which the summed upper bounds of it and all cursors before it
    exceed ``threshold``; ``None`` if none does (no remaining document can enter the top-k).

    Args:
        docs: ``(m,)`` each cursor's current document, non-decreasing; exhausted cursors are
            last and hold a document id past every real one (they are never the pivot).
        bounds: ``(m,)`` each cursor's upper bound (query weight x the term's largest impact).
        threshold: the k-th best score so far (``-1`` while fewer than k are held).

    No document before the pivot's can score above ``threshold``: it lacks every term from the
    pivot on, and the terms before the pivot bound its score by at most ``threshold``. Documents
    are visited in increasing id, so one that only ties the threshold cannot enter either (the
    document holding the threshold has a smaller id).
    """
    if len(docs) != len(bounds):
        raise ValueError(f"docs and bounds differ in length ({len(docs)} vs {len(bounds)})")
    if any(b < a for a, b in zip(docs, docs[1:])):
        raise ValueError("docs must be sorted (non-decreasing): sort the cursors by their current document")
    acc = 0
    for i, (doc, bound) in enumerate(zip(docs, bounds)):
        if doc == _END:
            return None
        acc += bound
        if acc > threshold:
            return i
    return None


def _wand(index: ImpactIndex, query: Mapping[int, int], k: int, block_max: bool) -> SearchResult:
    q, k = _check(index, query, k)
    cursors = [_Cursor(index, t, qw) for t, qw in q.items()]
    top, scored = _TopK(k), 0
    while True:
        cursors.sort(key=lambda c: c.doc)
        pivot = wand_pivot([c.doc for c in cursors], [c.ub for c in cursors], top.threshold)
        if pivot is None:
            break
        pdoc = cursors[pivot].doc
        # every cursor up to the pivot that sits on the pivot document
        while pivot + 1 < len(cursors) and cursors[pivot + 1].doc == pdoc:
            pivot += 1
        if block_max:
            bounds = [c.block_ub(pdoc) for c in cursors[:pivot + 1]]
            if not top.enters(sum(b for b, _ in bounds), pdoc):
                # skip past the nearest chunk end among the leading cursors, not beyond the next doc
                nxt = min(last for _, last in bounds)
                beyond = cursors[pivot + 1].doc if pivot + 1 < len(cursors) else _END
                target = min(nxt + 1 if nxt != _END else _END, beyond)
                target = max(target, pdoc + 1)
                for c in cursors[:pivot + 1]:
                    c.seek(target)
                continue
        if cursors[0].doc == pdoc:
            score = 0
            for c in cursors[:pivot + 1]:
                score += c.score()
                scored += 1
                c.pos += 1
            if top.enters(score, pdoc):
                top.push(score, pdoc)
        else:
            for c in cursors[:pivot]:
                if c.doc < pdoc:
                    c.seek(pdoc)
    return top.result(scored)


def wand(index: ImpactIndex, query: Mapping[int, int], k: int) -> SearchResult:
    """WAND (broder2003efficient)."""
    return _wand(index, query, k, block_max=False)


def block_max_wand(index: ImpactIndex, query: Mapping[int, int], k: int) -> SearchResult:
    """Block-Max WAND (ding2011faster)."""
    return _wand(index, query, k, block_max=True)


def block_max_pruning(index: ImpactIndex, query: Mapping[int, int], k: int, *, alpha: float = 1.0) -> SearchResult:
    """Block-Max Pruning (mallia2024faster): visit document id ranges by decreasing bound and
    stop when the bound is below ``threshold / alpha`` (``0 < alpha <= 1``; 1 is safe), or is 0
    (no query term occurs in the remaining ranges)."""
    q, k = _check(index, query, k)
    alpha = checks.real(alpha, "alpha", lo=0.0, hi=1.0, closed_low=False)
    terms = np.array(list(q), dtype=np.int64)
    qw = np.array([q[t] for t in terms], dtype=np.int64)
    top, scored, ranges = _TopK(k), 0, 0
    if not len(terms):
        return top.result(0)
    bounds = (index.range_max[:, terms] @ qw).astype(np.int64)          # (ranges,)
    for r in np.lexsort((np.arange(len(bounds)), -bounds)):
        theta = top.threshold
        if bounds[r] == 0 or (len(top.heap) == top.k and (
                bounds[r] < theta / alpha or (alpha == 1.0 and not top.enters(int(bounds[r]), r * index.doc_block)))):
            break
        lo, hi = r * index.doc_block, min((r + 1) * index.doc_block, index.n_docs)
        acc = np.zeros(hi - lo, dtype=np.int64)
        for t, w in zip(terms, qw):
            d = index.docs[t]
            a, b = np.searchsorted(d, lo), np.searchsorted(d, hi)
            acc[d[a:b] - lo] += w * index.impacts[t][a:b]
            scored += int(b - a)
        ranges += 1
        for i in np.flatnonzero(acc):
            top.push(int(acc[i]), lo + int(i))
    return top.result(scored, ranges)


#: The methods by name, all ``(index, query, k) -> SearchResult``.
METHODS = {"exhaustive": exhaustive, "maxscore": maxscore, "wand": wand, "block_max_wand": block_max_wand,
           "block_max_pruning": block_max_pruning}
