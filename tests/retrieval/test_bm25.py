"""BM25: a hand-worked 3-document case, a slow per-document twin, bm25s on the same tokens,
deterministic ties, bad input."""
import math
from collections import Counter

import numpy as np
import pytest

from sparsity_core.retrieval import BM25, METHODS, STOPWORDS_EN, tokenize, topk
from sparsity_core.retrieval.bm25 import tf_component

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A lazy dog sleeps all day; the dogs are lazier than foxes.",
    "Return the number of items in a container.",
    "Return a new sorted list from the items in iterable.",
    "Sparse retrieval scores documents by the terms they share with the query.",
    "Dense retrieval compares embeddings; sparse retrieval compares terms.",
    "Foxes and dogs: an old story of running and jumping.",
    "Count the items, then sort the items, then return them.",
]
QUERIES = ["lazy dogs", "sort items and return a list", "sparse retrieval of terms",
           "jumping foxes", "nothing matches zzzz", "the the the"]


def naive_scores(corpus, query, k1=1.5, b=0.75, method="lucene"):
    """Slow twin: the BM25 formula document by document, term by term."""
    n = len(corpus)
    avgdl = sum(len(d) for d in corpus) / n
    out = np.zeros(n)
    for i, doc in enumerate(corpus):
        counts = Counter(doc)
        for t in query:                       # repeats count once per occurrence
            if counts[t] == 0:
                continue
            df = sum(t in d for d in corpus)
            if method == "lucene":
                w = math.log(1 + (n - df + 0.5) / (df + 0.5))
            elif method == "robertson":
                w = math.log(max(1.0, (n - df + 0.5) / (df + 0.5)))
            else:
                w = math.log(n / df)
            f = counts[t]
            tfc = f / (f + k1 * (1 - b + b * len(doc) / avgdl))
            out[i] += w * tfc * ((k1 + 1) if method == "atire" else 1)
    return out


# ---------------------------------------------------------------------------- by hand

CORPUS3 = [["cat", "dog"], ["cat", "cat", "fish"], ["bird"]]  # lengths 2, 3, 1; avgdl 2


def test_three_documents_by_hand():
    # k1 = 1.5, b = 0.75. Length factor K = k1 (1 - b + b |d| / 2): d0 1.5, d1 2.0625.
    # tf part: d0 "cat" 1 / (1 + 1.5) = 0.4; d1 "cat" 2 / (2 + 2.0625) = 32/65.
    # Lucene idf: cat (df 2) ln(1 + 1.5/2.5) = ln 1.6; dog (df 1) ln(1 + 2.5/1.5) = ln(8/3).
    m = BM25().fit(CORPUS3)
    np.testing.assert_allclose(m.scores(["cat"]), [0.4 * math.log(1.6), 32 / 65 * math.log(1.6), 0],
                               rtol=1e-12)
    np.testing.assert_allclose(m.scores(["cat", "dog"])[0], 0.4 * (math.log(1.6) + math.log(8 / 3)),
                               rtol=1e-12)
    # query terms count per occurrence
    np.testing.assert_allclose(m.scores(["cat", "cat"]), 2 * m.scores(["cat"]), rtol=1e-12)
    # ATIRE: idf ln(3/2), tf part times (k1 + 1) = 2.5: d0 gives 2.5 * 0.4 * ln 1.5 = ln 1.5
    atire = BM25(method="atire").fit(CORPUS3)
    assert atire.scores(["cat"])[0] == pytest.approx(math.log(1.5), rel=1e-12)
    # Robertson clipped at 0: cat (in 2 of 3 docs) weighs nothing; dog gets ln(2.5/1.5)
    rob = BM25(method="robertson").fit(CORPUS3)
    np.testing.assert_array_equal(rob.scores(["cat"]), [0, 0, 0])
    assert rob.scores(["dog"])[0] == pytest.approx(0.4 * math.log(5 / 3), rel=1e-12)
    # b = 0: no length normalisation, tf part f / (f + k1)
    flat = BM25(b=0.0).fit(CORPUS3)
    assert flat.scores(["cat"])[1] == pytest.approx(2 / 3.5 * math.log(1.6), rel=1e-12)


def test_index_shapes_and_vocab():
    m = BM25().fit(CORPUS3)
    assert m.weights.shape == (3, 4) and m.weights.nnz == 5
    assert m.vocab == {"cat": 0, "dog": 1, "fish": 2, "bird": 3}
    np.testing.assert_array_equal(m.doc_lengths, [2, 3, 1])
    assert m.avg_doc_length == 2.0
    df = np.array([2, 1, 1, 1])
    np.testing.assert_allclose(m.idf, np.log1p((3 - df + 0.5) / (df + 0.5)))
    assert "N=3, V=4" in repr(m)


def test_atire_tf_is_lucene_times_k1_plus_1():
    tf, dl = np.array([1.0, 2.0, 5.0]), np.array([3, 10, 7])
    np.testing.assert_allclose(tf_component(tf, dl, 6.0, 1.2, 0.75, "atire"),
                               2.2 * tf_component(tf, dl, 6.0, 1.2, 0.75, "lucene"))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k1,b", [(1.5, 0.75), (0.9, 0.4), (2.0, 1.0), (0.0, 0.5)])
def test_matches_slow_twin(method, k1, b):
    corpus = [tokenize(s, stem=False) for s in SENTENCES]
    m = BM25(k1=k1, b=b, method=method).fit(corpus)
    for q in QUERIES:
        qt = tokenize(q, stem=False, stopwords=None)
        np.testing.assert_allclose(m.scores(qt), naive_scores(corpus, qt, k1, b, method),
                                   rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------- vs bm25s

def test_tokenize_matches_bm25s():
    bm25s = pytest.importorskip("bm25s")
    Stemmer = pytest.importorskip("Stemmer")
    assert STOPWORDS_EN == frozenset(bm25s.stopwords.STOPWORDS_EN)
    texts = SENTENCES + ["Don't split x_y; café CAFÉ naïve 3.14 a1 b2 --flag"]
    theirs = bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"),
                            return_ids=False, show_progress=False)
    assert [tokenize(t) for t in texts] == [list(x) for x in theirs]
    assert tokenize("The Dogs are RUNNING") == ["dog", "run"]
    assert tokenize("The Dogs are RUNNING", stem=False) == ["dogs", "running"]
    assert tokenize("The Dogs", stem=False, stopwords=None) == ["the", "dogs"]
    assert tokenize("The Dogs", stem=False, stopwords=["dogs"]) == ["the"]


def _bm25s_scores(corpus, queries, method, k1=1.5, b=0.75):
    bm25s = pytest.importorskip("bm25s")
    ref = bm25s.BM25(k1=k1, b=b, method=method)
    ref.index(corpus, show_progress=False)
    return [np.asarray(ref.get_scores(q), dtype=np.float64) for q in queries]


@pytest.mark.parametrize("method", METHODS)
def test_equals_bm25s_small_corpus(method):
    pytest.importorskip("Stemmer")
    corpus = [tokenize(s) for s in SENTENCES]
    queries = [tokenize(q) for q in QUERIES if tokenize(q)]
    ours = BM25(method=method).fit(corpus)
    for q, theirs in zip(queries, _bm25s_scores(corpus, queries, method)):
        np.testing.assert_allclose(ours.scores(q), theirs, rtol=1e-5, atol=0)


@pytest.mark.parametrize("method,k1,b", [("lucene", 1.5, 0.75), ("lucene", 0.9, 0.4),
                                         ("robertson", 1.2, 0.75), ("atire", 1.5, 0.75)])
def test_equals_bm25s_on_200_benchmark_docs(method, k1, b):
    pytest.importorskip("Stemmer")
    from sparsity_core.data.retrieval import load_pydocs

    bench = load_pydocs(include_verbatim=True)
    corpus = [tokenize(d) for d in bench.docs[::41][:200]]
    queries = [tokenize(t) for t in bench.texts("test")[:60]]
    assert len(corpus) == 200
    ours = BM25(k1=k1, b=b, method=method).fit(corpus)
    theirs = _bm25s_scores(corpus, queries, method, k1, b)
    mine = np.stack([ours.scores(q) for q in queries])
    assert (mine > 0).sum() > 1000                     # the comparison is not vacuous
    np.testing.assert_allclose(mine, np.stack(theirs), rtol=1e-5, atol=0)


# ---------------------------------------------------------------------------- search, ties

def test_search_matches_sorted_scores_and_batches():
    corpus = [tokenize(s, stem=False) for s in SENTENCES]
    queries = [tokenize(q, stem=False) for q in QUERIES]
    m = BM25().fit(corpus)
    idx, val = m.search(queries, k=5)
    assert idx.shape == val.shape == (len(queries), 5) and idx.dtype == np.int64
    for q, row, v in zip(queries, idx, val):
        s = m.scores(q)
        order = np.lexsort((np.arange(len(s)), -s))[:5]
        np.testing.assert_array_equal(row, order)
        np.testing.assert_array_equal(v, s[order])
    for bs in (1, 2, 100):
        i2, v2 = m.search(queries, k=5, batch_size=bs)
        np.testing.assert_array_equal(i2, idx)
        np.testing.assert_array_equal(v2, val)


def test_ties_broken_by_lower_index():
    corpus = [["x", "y"], ["z"], ["x", "y"], ["x", "y"], ["w"], ["x", "y"]]
    m = BM25().fit(corpus)
    idx, val = m.search([["x"], ["nothing"], []], k=3)
    np.testing.assert_array_equal(idx[0], [0, 2, 3])          # four equal scores
    assert val[0, 0] == val[0, 1] == val[0, 2] > 0
    np.testing.assert_array_equal(idx[1], [0, 1, 2])          # no known term: all zero
    np.testing.assert_array_equal(idx[2], [0, 1, 2])          # empty query: all zero
    np.testing.assert_array_equal(val[1:], 0)


def test_topk_against_stable_sort():
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = rng.integers(0, 4, size=30).astype(float)          # many ties
        k = int(rng.integers(1, 31))
        idx, val = topk(s, k)
        expected = np.argsort(-s, kind="stable")[:k]
        np.testing.assert_array_equal(idx, expected)
        np.testing.assert_array_equal(val, s[expected])


# ---------------------------------------------------------------------------- bad input

def test_bad_input():
    with pytest.raises(ValueError, match="k1"):
        BM25(k1=-1)
    with pytest.raises(ValueError, match="b must"):
        BM25(b=1.5)
    with pytest.raises(ValueError, match="method"):
        BM25(method="bm25x")
    with pytest.raises(RuntimeError, match="fit"):
        BM25().scores(["a"])
    with pytest.raises(ValueError, match="non-empty"):
        BM25().fit([])
    with pytest.raises(ValueError, match="non-empty"):
        BM25().fit("some text")
    with pytest.raises(ValueError, match="no tokens"):
        BM25().fit([[], []])
    with pytest.raises(TypeError, match="tokenize"):
        BM25().fit([["a"], "b c"])
    with pytest.raises(TypeError, match="str tokens"):
        BM25().fit([["a", 1]])
    m = BM25().fit(CORPUS3)
    with pytest.raises(TypeError, match="tokenize"):
        m.scores("cat dog")
    with pytest.raises(TypeError):
        m.search("cat dog", k=1)
    for k in (0, 4, -1, 2.0, True):
        with pytest.raises(ValueError, match="k must"):
            m.search([["cat"]], k=k)
    with pytest.raises(ValueError, match="k must"):
        topk(np.zeros(3), 4)
    with pytest.raises(TypeError):
        tokenize(["not", "a", "str"])
    with pytest.raises(ValueError, match="stopwords"):
        tokenize("text", stopwords="fr")
    np.testing.assert_array_equal(m.scores([]), 0)           # empty query: zeros, no error
    assert m.search([], k=2)[0].shape == (0, 2)
