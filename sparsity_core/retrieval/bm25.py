r"""BM25 with an eager sparse index: the term weights of every (document, term) pair are
computed once at :meth:`BM25.fit`, so a query's scores are a sum of columns.

.. math::

    s(q, d) = \sum_{t \in q} \mathrm{idf}(t)\,
              \frac{f_{t,d}}{f_{t,d} + k_1\left(1 - b + b\,|d| / \mathrm{avgdl}\right)}

with :math:`f_{t,d}` the count of term t in d, :math:`|d|` the document's length in tokens
and avgdl the mean length over the corpus. A query term counts once per occurrence in the
query (Robertson's query-frequency factor with :math:`k_3 \to \infty`).

Variants (``method``, named as in bm25s, after Kamphuis et al. 2020):

========= ======================================================= =========================
method    idf(t), N documents, n_t of them contain t                tf component
========= ======================================================= =========================
lucene    :math:`\log(1 + (N - n_t + 0.5)/(n_t + 0.5))`             as above
robertson :math:`\log\max(1, (N - n_t + 0.5)/(n_t + 0.5))`         as above
atire     :math:`\log(N / n_t)`                                      :math:`(k_1 + 1)\times` above
========= ======================================================= =========================

Notes:
    * "lucene" is Lucene >= 8's BM25: it drops the :math:`(k_1 + 1)` numerator of the
      classic formula, a constant factor per query, so rankings are unchanged.
    * "robertson" clips the Robertson--Spärck Jones idf at 0 (bm25s's default,
      ``allow_negative=False``): the raw form is negative for terms in more than half the
      documents. Rankings equal Lucene's when no query term has :math:`n_t > N/2`.
    * Defaults ``k1 = 1.5``, ``b = 0.75``, ``method = "lucene"`` are bm25s's defaults
      (``bm25s.BM25.__init__``); Robertson & Zaragoza give k1 in [1.2, 2.0], b = 0.75.
    * Scores are float64; bm25s stores float32, so the two agree to ~1e-6 relative.

Shapes: N documents, V vocabulary terms, Q queries, K results per query.

References (keys in ``book/references.bib``):
    robertson2009probabilistic: Robertson & Zaragoza (2009), "The Probabilistic Relevance
    Framework: BM25 and Beyond", FnTIR 3(4).
    Reference implementation (compared in the tests, not copied): xhluca/bm25s
    ``bm25s/scoring.py`` (``_score_idf_*``, ``_score_tfc_*``).

Taught in: Chapter 7, "Retrieval".
"""
from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Callable

import numpy as np
import scipy.sparse as sp

__all__ = ["STOPWORDS_EN", "TOKEN_PATTERN", "tokenize", "idf", "tf_component", "BM25",
           "topk", "METHODS"]

# Lucene's EnglishAnalyzer stop set, the list bm25s calls "en" (bm25s/stopwords.py).
STOPWORDS_EN = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with"))
# Words of two or more word characters: scikit-learn's CountVectorizer default, bm25s's splitter.
TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")
METHODS = ("lucene", "robertson", "atire")


@functools.lru_cache(maxsize=1)
def _english_stemmer():
    try:
        import Stemmer  # PyStemmer: the Snowball English (Porter 2) stemmer
    except ImportError as e:
        raise ImportError("tokenize(stem=True) needs PyStemmer: pip install PyStemmer "
                          "(or pass stem=False)") from e
    return Stemmer.Stemmer("english")


def tokenize(text: str, *, stem: bool = True, stopwords: str | Iterable[str] | None = "en"
             ) -> list[str]:
    """Lowercase, split into words of >= 2 word characters, drop stopwords, then stem.

    The same steps, in the same order, as ``bm25s.tokenize(texts, stopwords="en",
    stemmer=Stemmer.Stemmer("english"))``, so our BM25 and bm25s see identical tokens in
    the comparison (a test checks this).

    Args:
        text: one document or query.
        stem: apply PyStemmer's English stemmer (needs ``pip install PyStemmer``).
        stopwords: ``"en"`` (:data:`STOPWORDS_EN`), ``None`` for none, or an iterable of
            lowercase words. Stopwords are removed before stemming.

    Returns:
        The tokens, in text order (repeats kept).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (got {type(text).__name__})")
    if stopwords == "en":
        stop = STOPWORDS_EN
    elif stopwords is None:
        stop = frozenset()
    elif isinstance(stopwords, str):
        raise ValueError(f"stopwords must be 'en', None or a list of words (got {stopwords!r})")
    else:
        stop = frozenset(stopwords)
    words = [w for w in TOKEN_PATTERN.findall(text.lower()) if w not in stop]
    return _english_stemmer().stemWords(words) if stem and words else words


# ---------------------------------------------------------------------------- the formula

def _idf_lucene(df: np.ndarray, n_docs: int) -> np.ndarray:
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


def _idf_robertson(df: np.ndarray, n_docs: int) -> np.ndarray:
    return np.log(np.maximum(1.0, (n_docs - df + 0.5) / (df + 0.5)))


def _idf_atire(df: np.ndarray, n_docs: int) -> np.ndarray:
    return np.log(n_docs / df)


_IDF: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "lucene": _idf_lucene, "robertson": _idf_robertson, "atire": _idf_atire}
_TF_SCALE = {"lucene": False, "robertson": False, "atire": True}  # multiply by (k1 + 1)?


def idf(df: np.ndarray, n_docs: int, method: str = "lucene") -> np.ndarray:
    """Inverse document frequency of terms with document frequencies ``df`` (V,) in N docs.

    ``df`` must be >= 1 (terms absent from the corpus are never in the index).
    """
    _check_method(method)
    df = np.asarray(df, dtype=np.float64)
    return _IDF[method](df, n_docs)


def tf_component(tf: np.ndarray, doc_len: np.ndarray, avg_len: float, k1: float, b: float,
                 method: str = "lucene") -> np.ndarray:
    r"""Saturated, length-normalised term frequency (elementwise over matching arrays).

    .. math:: \frac{f}{f + k_1 (1 - b + b\,|d| / \mathrm{avgdl})},
              \text{ times } (k_1 + 1) \text{ for ATIRE.}
    """
    _check_method(method)
    tf = np.asarray(tf, dtype=np.float64)
    out = tf / (tf + k1 * (1.0 - b + b * np.asarray(doc_len, dtype=np.float64) / avg_len))
    return out * (k1 + 1.0) if _TF_SCALE[method] else out


def _check_method(method: str) -> None:
    if method not in _IDF:
        raise ValueError(f"method must be one of {METHODS} (got {method!r})")


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest ``scores`` (N,), ties broken by lower index.

    Exact and deterministic: every score equal to the k-th largest is a candidate, then
    candidates are sorted by (score descending, index ascending).
    """
    n = scores.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must satisfy 1 <= k <= {n} (got k={k})")
    part = np.argpartition(-scores, k - 1)[:k]
    cand = np.flatnonzero(scores >= scores[part].min())
    order = np.lexsort((cand, -scores[cand]))[:k]
    idx = cand[order]
    return idx, scores[idx]


# ---------------------------------------------------------------------------- the index

class BM25:
    """Eager BM25 index: ``fit`` a tokenized corpus, then ``scores`` or ``search``.

    Args:
        k1: term-frequency saturation, ``k1 >= 0``.
        b: length normalisation, ``0 <= b <= 1``.
        method: ``"lucene"`` (default), ``"robertson"`` or ``"atire"``; see the module
            docstring.

    Attributes:
        vocab: term -> column index (V terms, in order of first appearance); set by :meth:`fit`,
            as are the others.
        weights: ``scipy.sparse.csc_array`` (N, V) of precomputed term weights
            :math:`\\mathrm{idf}(t) \\cdot \\mathrm{tfc}(t, d)`; column t is t's posting list.
        idf: (V,) float64.
        doc_lengths: (N,) int64.
        avg_doc_length: float.
    """

    def __init__(self, k1: float = 1.5, b: float = 0.75, method: str = "lucene"):
        if not (np.isfinite(k1) and k1 >= 0):
            raise ValueError(f"k1 must be a finite number >= 0 (got {k1})")
        if not 0 <= b <= 1:
            raise ValueError(f"b must satisfy 0 <= b <= 1 (got {b})")
        _check_method(method)
        self.k1, self.b, self.method = float(k1), float(b), method
        self.weights: sp.csc_array | None = None

    def __repr__(self) -> str:
        fitted = f", N={self.n_docs}, V={len(self.vocab)}" if self.weights is not None else ""
        return f"BM25(k1={self.k1}, b={self.b}, method={self.method!r}{fitted})"

    def fit(self, tokenized_corpus: Sequence[Sequence[str]]) -> BM25:
        """Build the (N, V) weight matrix from N token lists (see :func:`tokenize`)."""
        if isinstance(tokenized_corpus, str) or len(tokenized_corpus) == 0:
            raise ValueError("tokenized_corpus must be a non-empty list of token lists")
        vocab: dict[str, int] = {}
        rows, cols, counts = [], [], []
        lengths = np.zeros(len(tokenized_corpus), dtype=np.int64)
        for d, tokens in enumerate(tokenized_corpus):
            _check_tokens(tokens, f"tokenized_corpus[{d}]")
            lengths[d] = len(tokens)
            for term, c in Counter(tokens).items():
                rows.append(d)
                cols.append(vocab.setdefault(term, len(vocab)))
                counts.append(c)
        if lengths.sum() == 0:
            raise ValueError("tokenized_corpus has no tokens (every document is empty)")
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        tf = np.asarray(counts, dtype=np.float64)
        n_docs = len(tokenized_corpus)
        avg_len = float(lengths.mean())
        df = np.bincount(cols, minlength=len(vocab))              # (V,) docs containing t
        term_idf = idf(df, n_docs, self.method)
        w = term_idf[cols] * tf_component(tf, lengths[rows], avg_len, self.k1, self.b,
                                          self.method)
        self.weights = sp.csc_array((w, (rows, cols)), shape=(n_docs, len(vocab)))
        self.vocab, self.idf = vocab, term_idf
        self.doc_lengths, self.avg_doc_length = lengths, avg_len
        return self

    @property
    def n_docs(self) -> int:
        return self._fitted().shape[0]

    def _fitted(self) -> sp.csc_array:
        if self.weights is None:
            raise RuntimeError("call fit(tokenized_corpus) before scoring")
        return self.weights

    def _query_matrix(self, tokenized_queries: Sequence[Sequence[str]]) -> sp.csr_array:
        """(Q, V) query-term counts; unknown terms are dropped."""
        rows, cols = [], []
        for q, tokens in enumerate(tokenized_queries):
            _check_tokens(tokens, f"tokenized_queries[{q}]")
            ids = [self.vocab[t] for t in tokens if t in self.vocab]
            rows += [q] * len(ids)
            cols += ids
        data = np.ones(len(rows), dtype=np.float64)           # duplicates are summed
        return sp.csr_array((data, (rows, cols)), shape=(len(tokenized_queries), len(self.vocab)))

    def scores(self, tokenized_query: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for one query: (N,) float64.

        A query with no known terms (or no tokens) scores 0 everywhere.
        """
        weights = self._fitted()
        return np.asarray(weights @ self._query_matrix([tokenized_query]).T.toarray()).ravel()

    def search(self, tokenized_queries: Sequence[Sequence[str]], k: int = 10,
               batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` documents of each query, best first, ties broken by lower document index.

        Args:
            tokenized_queries: Q token lists.
            k: results per query, ``1 <= k <= N``.
            batch_size: queries scored together (memory is ``batch_size * N`` floats).

        Returns:
            ``(indices, scores)``: (Q, k) int64 document indices and (Q, k) float64 scores.
        """
        weights = self._fitted()
        n = weights.shape[0]
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
            raise ValueError(f"k must be an int with 1 <= k <= N={n} (got k={k!r})")
        if isinstance(tokenized_queries, str):
            raise TypeError("tokenized_queries must be a list of token lists, not a str")
        n_q = len(tokenized_queries)
        indices = np.zeros((n_q, k), dtype=np.int64)
        values = np.zeros((n_q, k), dtype=np.float64)
        weights_t = weights.T.tocsr()                          # (V, N)
        for start in range(0, n_q, batch_size):
            qm = self._query_matrix(tokenized_queries[start:start + batch_size])
            block = (qm @ weights_t).toarray()                 # (B, N)
            for r, row in enumerate(block):
                indices[start + r], values[start + r] = topk(row, k)
        return indices, values


def _check_tokens(tokens: object, name: str) -> None:
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise TypeError(f"{name} must be a list of str tokens (got {type(tokens).__name__}); "
                        "tokenize text first")
    for t in tokens:
        if not isinstance(t, str):
            raise TypeError(f"{name} must hold str tokens (got {type(t).__name__} {t!r})")
