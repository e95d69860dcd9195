"""The compiled query loops equal the reference methods of ``pruning``: same top-k (ties
included) and the same number of postings scored, query by query."""
import numpy as np
import pytest
import scipy.sparse as sp

from sparsity_core.retrieval.compiled import COMPILED_METHODS, batch_search, compile_index
from sparsity_core.retrieval.pruning import METHODS, ImpactIndex, block_max_pruning

from .test_pruning import _idf_like_index, _random_index


def _queries(index, rng, n=10):
    out = []
    for _ in range(n):
        terms = rng.choice(index.n_terms, size=rng.integers(1, 7), replace=False)
        out.append({int(t): int(rng.integers(1, 4)) for t in terms})
    return out


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("method", COMPILED_METHODS)
def test_compiled_equals_reference_on_random_indexes(seed, method):
    index, rng = _random_index(seed)
    queries = _queries(index, rng)
    flat = compile_index(index)
    for k in (1, 7, 30):
        got = batch_search(index, queries, k, method=method, flat=flat)
        for i, query in enumerate(queries):
            ref = METHODS[method](index, query, k)
            res = got.result(i)
            assert np.array_equal(res.docs, ref.docs) and np.array_equal(res.scores, ref.scores), (query, k)
            assert res.scored == ref.scored and res.ranges == ref.ranges, (query, k)
            assert (got.docs[i, got.found[i]:] == -1).all()


@pytest.mark.parametrize("alpha", [0.9, 0.7, 0.4])
def test_compiled_bmp_equals_reference_below_alpha_one(alpha):
    index, rng = _random_index(3, doc_block=8)
    queries = _queries(index, rng, n=20)
    got = batch_search(index, queries, 10, method="block_max_pruning", alpha=alpha)
    for i, query in enumerate(queries):
        ref = block_max_pruning(index, query, 10, alpha=alpha)
        res = got.result(i)
        assert np.array_equal(res.docs, ref.docs) and res.scored == ref.scored and res.ranges == ref.ranges


def test_compiled_methods_skip_postings_on_an_idf_like_index():
    index = _idf_like_index(doc_block=8)
    query = [{0: 1, 1: 1, 2: 1, 3: 1}]
    full = batch_search(index, query, 10, method="exhaustive")
    for method in ("maxscore", "block_max_pruning"):
        got = batch_search(index, query, 10, method=method)
        assert np.array_equal(got.docs, full.docs)
        assert got.scored[0] < 0.5 * full.scored[0], method


def test_empty_and_unknown_queries_return_nothing():
    index, _ = _random_index(0)
    for method in COMPILED_METHODS:
        got = batch_search(index, [{}, {0: 1}], 5, method=method)
        assert got.found[0] == 0 and got.scored[0] == 0 and (got.docs[0] == -1).all()


def test_bad_input():
    index, _ = _random_index(0)
    with pytest.raises(ValueError, match="method"):
        batch_search(index, [{0: 1}], 5, method="wand")
    with pytest.raises(ValueError, match="alpha applies"):
        batch_search(index, [{0: 1}], 5, method="maxscore", alpha=0.5)
    with pytest.raises(ValueError, match="k"):
        batch_search(index, [{0: 1}], index.n_docs + 1)
    with pytest.raises(TypeError, match="sequence"):
        batch_search(index, {0: 1}, 5)
    with pytest.raises(TypeError, match="ImpactIndex"):
        batch_search(sp.csc_array(np.ones((3, 3))), [{0: 1}], 1)
    other = ImpactIndex(sp.csc_array(np.ones((5, 2))))
    with pytest.raises(ValueError, match="compile_index"):
        batch_search(index, [{0: 1}], 5, flat=compile_index(other))


def test_bad_queries():
    index, _ = _random_index(0)
    with pytest.raises(TypeError, match=r"queries\[1\]"):
        batch_search(index, [{0: 1}, [0, 1]], 5)
    with pytest.raises(TypeError, match="ints"):
        batch_search(index, [{0: 1.5}], 5)
    with pytest.raises(ValueError, match="weights"):
        batch_search(index, [{0: 0}], 5)
    with pytest.raises(ValueError, match="terms must lie"):
        batch_search(index, [{index.n_terms: 1}], 5)
    with pytest.raises(ValueError, match="terms must lie"):
        batch_search(index, [{-1: 1}], 5)
