"""Safe dynamic pruning returns exactly the exhaustive top-k (ties included) while scoring fewer postings."""
import numpy as np
import pytest
import scipy.sparse as sp

from sparsity_core.retrieval import BM25, tokenize
from sparsity_core.retrieval.pruning import (METHODS, ImpactIndex, block_max_pruning, block_max_wand, exhaustive, query_terms,
                                             maxscore, wand)

SAFE = ("maxscore", "wand", "block_max_wand", "block_max_pruning")


def _random_index(seed, n_docs=300, n_terms=40, density=0.08, bits=4, chunk=8, doc_block=16):
    rng = np.random.default_rng(seed)
    # Zipf-like term frequencies: a few long posting lists, many short ones
    p = density * 3 / (1 + np.arange(n_terms)) ** 0.7
    mask = rng.random((n_docs, n_terms)) < np.minimum(p, 0.9)
    w = np.where(mask, rng.gamma(2.0, 1.0, size=(n_docs, n_terms)), 0.0)
    # low precision makes ties common: the tie rule is tested too
    return ImpactIndex(sp.csc_array(w), bits=bits, chunk=chunk, doc_block=doc_block), rng


@pytest.mark.parametrize("seed", range(12))
def test_safe_methods_equal_exhaustive_on_random_indexes(seed):
    index, rng = _random_index(seed)
    for _ in range(8):
        terms = rng.choice(index.n_terms, size=rng.integers(1, 6), replace=False)
        query = {int(t): int(rng.integers(1, 3)) for t in terms}
        k = int(rng.integers(1, 25))
        ref = exhaustive(index, query, k)
        for name in SAFE:
            got = METHODS[name](index, query, k)
            assert np.array_equal(got.docs, ref.docs) and np.array_equal(got.scores, ref.scores), (name, query, k)
            assert got.scored <= ref.scored


def _idf_like_index(seed=0, n_docs=4000, doc_block=64):
    # as BM25: frequent terms carry small weights, rare terms large ones (idf)
    rng = np.random.default_rng(seed)
    density = np.array([0.5, 0.3, 0.1, 0.02])
    scale = np.log(1 / density)                                           # idf-like
    mask = rng.random((n_docs, 4)) < density
    w = np.where(mask, scale * rng.gamma(4.0, 0.25, size=(n_docs, 4)), 0.0)
    return ImpactIndex(sp.csc_array(w), bits=8, chunk=32, doc_block=doc_block)


def test_pruning_scores_a_fraction_of_the_postings_when_bounds_differ():
    index = _idf_like_index()
    query = {0: 1, 1: 1, 2: 1, 3: 1}
    ref = exhaustive(index, query, 10)
    for fn in (maxscore, wand, block_max_wand):
        got = fn(index, query, 10)
        assert np.array_equal(got.docs, ref.docs)
        assert got.scored < 0.5 * ref.scored, fn.__name__
    assert block_max_wand(index, query, 10).scored < wand(index, query, 10).scored
    # BMP's bounds are per id range: in a random document order they only bite with small ranges
    coarse, fine = (block_max_pruning(_idf_like_index(doc_block=b), query, 10) for b in (64, 8))
    assert np.array_equal(fine.docs, ref.docs) and fine.scored < 0.2 * ref.scored < coarse.scored


def test_block_max_pruning_below_alpha_one_trades_recall_for_work():
    index = _idf_like_index(doc_block=8)
    query = {0: 1, 1: 1, 2: 1, 3: 1}
    ref = set(exhaustive(index, query, 10).docs.tolist())
    runs = [block_max_pruning(index, query, 10, alpha=a) for a in (1.0, 0.7, 0.5)]
    work = [r.scored for r in runs]
    found = [len(ref & set(r.docs.tolist())) for r in runs]
    assert work[0] > work[1] > work[2]                     # stopping earlier scores fewer postings
    assert found[0] == 10 and found[2] < 10                # ... and at alpha 0.5 misses some of the top-10


def test_impacts_are_quantised_and_bm25_index_works_end_to_end():
    corpus = ["the cat sat on the mat", "a dog sat on a log", "cats and dogs", "the mat was red",
              "logs of dogs and cats", "red cat red dog"]
    bm = BM25().fit([tokenize(d) for d in corpus])
    index = ImpactIndex(bm.weights, bits=8)
    assert all(((imp >= 1) & (imp <= 255)).all() for imp in index.impacts)
    assert int(max(imp.max() for imp in index.impacts)) == 255
    q = {bm.vocab[t]: 1 for t in tokenize("red cat") if t in bm.vocab}
    ref = exhaustive(index, q, 3)
    assert ref.docs[0] == 5                                            # "red cat red dog"
    for name in SAFE:
        assert np.array_equal(METHODS[name](index, q, 3).docs, ref.docs)


def test_bad_input():
    index, _ = _random_index(0)
    with pytest.raises(ValueError):
        exhaustive(index, {0: 1}, 0)
    with pytest.raises(ValueError):
        wand(index, {index.n_terms: 1}, 3)
    with pytest.raises(ValueError):
        maxscore(index, {0: 0}, 3)
    with pytest.raises(ValueError):
        block_max_pruning(index, {0: 1}, 3, alpha=0.0)
    with pytest.raises(ValueError):
        ImpactIndex(sp.csc_array(-np.ones((3, 2))))
    with pytest.raises(TypeError):
        exhaustive("index", {0: 1}, 3)
    empty = exhaustive(index, {}, 3)
    assert len(empty.docs) == 0 and empty.scored == 0


def test_wand_pivot_by_hand():
    from sparsity_core.retrieval.pruning import wand_pivot
    # bounds 3, 4, 5 on documents 2, 7, 9: prefix sums 3, 7, 12
    assert wand_pivot([2, 7, 9], [3, 4, 5], -1) == 0          # fewer than k held: the first cursor
    assert wand_pivot([2, 7, 9], [3, 4, 5], 3) == 1           # 3 is not > 3
    assert wand_pivot([2, 7, 9], [3, 4, 5], 7) == 2
    assert wand_pivot([2, 7, 9], [3, 4, 5], 12) is None       # nothing can beat the threshold
    assert wand_pivot([], [], 0) is None
    end = np.iinfo(np.int64).max
    assert wand_pivot([2, end], [3, 100], 5) is None          # an exhausted cursor is never the pivot
    with pytest.raises(ValueError, match="sorted"):
        wand_pivot([7, 2], [1, 1], 0)
    with pytest.raises(ValueError, match="length"):
        wand_pivot([1, 2], [1], 0)


def test_query_terms_counts_known_tokens_only():
    from sparsity_core.retrieval.pruning import query_terms
    assert query_terms({"a": 0, "b": 1}, ["a", "c", "b", "a"]) == {0: 2, 1: 1}
    assert query_terms({"a": 0}, []) == {}
    with pytest.raises(TypeError, match="tokenize"):
        query_terms({"a": 0}, "a b")


def test_query_terms_match_bm25_scores():
    docs = [tokenize(t) for t in ["the cat sat on the mat", "a cat and a dog", "dogs chase cats", "mat of straw"]]
    bm = BM25().fit(docs)
    index = ImpactIndex(bm.weights, bits=20)
    q = tokenize("cat cat mat")
    ref = bm.scores(q)
    got = exhaustive(index, query_terms(bm.vocab, q), 4)
    # the quantised ranking is the float ranking (no ties here)
    assert list(got.docs) == [int(d) for d in np.argsort(-ref, kind="stable")[:len(got.docs)]]
