"""MUVERA FDEs: the dimension formula, the Gray-code regions, and the identities that make the
FDE inner product a Chamfer similarity."""
import numpy as np
import pytest

from sparsity_core.retrieval.muvera import (FDE, FDEConfig, chamfer, chamfer_matrix, fde_dimension, gray_partition,
                                             token_knn_candidates)


def _unit(rng, n, d):
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_dimension_formula():
    assert fde_dimension(FDEConfig(dim=16)) == 16
    assert fde_dimension(FDEConfig(dim=16, reps=3, k_sim=4)) == 3 * 16 * 16
    assert fde_dimension(FDEConfig(dim=16, reps=2, k_sim=3, proj_dim=5)) == 2 * 8 * 5
    assert fde_dimension(FDEConfig(dim=16, reps=2, k_sim=3, proj_dim=5, final_dim=7)) == 7
    rng = np.random.default_rng(0)
    for cfg in (FDEConfig(dim=6, reps=2, k_sim=3, proj_dim=4), FDEConfig(dim=6, k_sim=2, final_dim=9)):
        enc = FDE(cfg)
        assert enc.encode_query(_unit(rng, 5, 6)).shape == enc.encode_document(_unit(rng, 5, 6)).shape == (fde_dimension(cfg),)


def test_gray_regions_are_a_bijection_with_one_sign_between_neighbours():
    k = 4
    patterns = np.array([[(i >> (k - 1 - j)) & 1 for j in range(k)] for i in range(2 ** k)], dtype=bool)
    index = gray_partition(patterns)
    assert sorted(index.tolist()) == list(range(2 ** k))
    by_index = patterns[np.argsort(index)]
    assert ((by_index[1:] != by_index[:-1]).sum(axis=1) == 1).all()      # neighbours differ in one sign
    assert gray_partition(np.array([[True], [False]])).tolist() == [1, 0]


def test_one_region_gives_sum_and_mean():
    rng = np.random.default_rng(1)
    q, d = rng.standard_normal((4, 5)), rng.standard_normal((7, 5))
    enc = FDE(FDEConfig(dim=5))
    assert np.allclose(enc.encode_query(q), q.sum(axis=0))
    assert np.allclose(enc.encode_document(d), d.mean(axis=0))
    assert enc.encode_query(q) @ enc.encode_document(d) == pytest.approx(float((q @ d.mean(axis=0)).sum()))


def test_fde_inner_product_is_chamfer_when_each_region_holds_the_best_match():
    rng = np.random.default_rng(2)
    enc = FDE(FDEConfig(dim=8, k_sim=3, seed=5))
    # one unit document vector per region: draw until each of 5 regions is hit once
    doc, seen = [], set()
    while len(doc) < 5:
        v = _unit(rng, 1, 8)[0]
        region = int(gray_partition((v @ enc.simhash[0] > 0)[None, :])[0])
        if region not in seen:
            seen.add(region)
            doc.append(v)
    doc = np.array(doc)
    query = doc[[0, 2, 2, 4]]                   # each query vector's best match (itself) is alone in its region
    assert enc.encode_query(query) @ enc.encode_document(doc) == pytest.approx(chamfer(query, doc))
    assert chamfer(query, doc) == pytest.approx(4.0)


def test_empty_regions_take_the_hamming_nearest_point():
    rng = np.random.default_rng(3)
    enc = FDE(FDEConfig(dim=6, k_sim=3))
    point = rng.standard_normal((1, 6))
    assert np.allclose(enc.encode_document(point), np.tile(point[0], 8))      # one point fills every region
    bare = FDE(FDEConfig(dim=6, k_sim=3, fill_empty=False)).encode_document(point).reshape(8, 6)
    assert (np.abs(bare).sum(axis=1) > 0).sum() == 1
    # two points: an empty region takes the point whose signs differ from the region's in fewer places
    two = rng.standard_normal((2, 6))
    fde = enc.encode_document(two).reshape(8, 6)
    signs = two @ enc.simhash[0] > 0
    for region in range(8):
        pattern = np.array([((region ^ (region >> 1)) >> (2 - i)) & 1 for i in range(3)], dtype=bool)
        owners = np.flatnonzero(gray_partition(signs) == region)
        if len(owners) == 0:
            nearest = int(np.argmin((signs != pattern).sum(axis=1)))
            assert np.allclose(fde[region], two[nearest])


def test_projections_preserve_inner_products_in_expectation():
    rng = np.random.default_rng(4)
    q, d = rng.standard_normal((3, 32)), rng.standard_normal((3, 32))
    exact = FDE(FDEConfig(dim=32)).encode_query(q) @ FDE(FDEConfig(dim=32)).encode_document(d)
    est = [FDE(FDEConfig(dim=32, proj_dim=8, final_dim=16, seed=s)) for s in range(400)]
    values = np.array([e.encode_query(q) @ e.encode_document(d) for e in est])
    assert abs(values.mean() - exact) < 4 * values.std() / np.sqrt(len(values))


def test_bad_input():
    with pytest.raises(ValueError):
        FDEConfig(dim=0)
    with pytest.raises(ValueError):
        FDEConfig(dim=4, k_sim=31)
    enc = FDE(FDEConfig(dim=4))
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        enc.encode_query(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="non-empty"):
        enc.encode_document(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="finite"):
        enc.encode_query(np.full((1, 4), np.nan))
    with pytest.raises(TypeError):
        FDE({"dim": 4})


def _texts(rng, lengths, d):
    return _unit(rng, int(sum(lengths)), d), np.asarray(lengths)


@pytest.mark.parametrize("cfg", [FDEConfig(dim=6), FDEConfig(dim=6, reps=3, k_sim=3),
                                 FDEConfig(dim=6, reps=2, k_sim=4, proj_dim=3),
                                 FDEConfig(dim=6, reps=2, k_sim=4, fill_empty=False),
                                 FDEConfig(dim=6, reps=2, k_sim=3, proj_dim=4, final_dim=11, seed=5)])
def test_batch_encoding_equals_one_text_at_a_time(cfg):
    rng = np.random.default_rng(2)
    points, lengths = _texts(rng, [1, 5, 2, 9, 1, 3], cfg.dim)      # one-vector texts leave most regions empty
    enc = FDE(cfg)
    texts = np.split(points, np.cumsum(lengths)[:-1])
    assert np.allclose(enc.encode_batch(points, lengths, document=True), [enc.encode_document(t) for t in texts])
    assert np.allclose(enc.encode_batch(points, lengths, document=False), [enc.encode_query(t) for t in texts])


def test_chamfer_matrix_equals_pairwise_chamfer():
    rng = np.random.default_rng(3)
    q, q_len = _texts(rng, [3, 1, 4], 5)
    d, d_len = _texts(rng, [2, 7, 1, 1, 5, 3], 5)
    expect = [[chamfer(a, b) for b in np.split(d, np.cumsum(d_len)[:-1])] for a in np.split(q, np.cumsum(q_len)[:-1])]
    for chunk in (1, 3, 8, 4096):                      # chunks smaller than a document still take it whole
        assert np.allclose(chamfer_matrix(q, q_len, d, d_len, chunk=chunk), expect)


def test_token_knn_candidates_by_hand():
    d = np.array([[1.0, 0], [0, 1], [0.9, 0.1], [-1, 0]])
    d_len = np.array([1, 2, 1])                        # doc 0: row 0; doc 1: rows 1, 2; doc 2: row 3
    q = np.array([[1.0, 0], [0, 1]])
    cands = token_knn_candidates(q, [2], d, d_len, per_token=2)
    # query vector 1: rows 0 (1.0), 2 (0.9); query vector 2: rows 1 (1.0), 2 (0.1) -> docs 0, 1 (deduplicated)
    assert [c.tolist() for c in cands] == [[0, 1]]
    assert token_knn_candidates(q, [1, 1], d, d_len, per_token=1)[1].tolist() == [1]
    assert sorted(token_knn_candidates(q, [2], d, d_len, per_token=99)[0].tolist()) == [0, 1, 2]
    one, two = token_knn_candidates(q, [2], d, d_len, per_token=[1, 2])     # one search, two settings
    assert one[0].tolist() == [0, 1] and two[0].tolist() == [0, 1]
    rng = np.random.default_rng(6)
    qs, q_len = _texts(rng, [3, 5], 4)
    ds, d_len = _texts(rng, [2, 4, 1, 6, 3], 4)
    assert all(np.array_equal(a, b) for p, res in zip((1, 3, 7), token_knn_candidates(qs, q_len, ds, d_len, [1, 3, 7]))
               for a, b in zip(res, token_knn_candidates(qs, q_len, ds, d_len, p)))


def _slow_sv(qs, q_len, ds, d_len, p):
    owner = np.repeat(np.arange(len(d_len)), d_len)
    out = []
    for query in np.split(qs, np.cumsum(q_len)[:-1]):
        hits = sorted(((float(v @ ds[r]), int(owner[r])) for v in query for r in np.argsort(-(ds @ v))[:p]),
                      key=lambda h: -h[0])
        seen = []
        for _, doc in hits:
            if doc not in seen:
                seen.append(doc)
        out.append(seen)
    return out


def test_token_knn_candidates_equal_a_loop():
    rng = np.random.default_rng(7)
    qs, q_len = _texts(rng, [3, 5, 1, 4], 6)
    ds, d_len = _texts(rng, [2, 4, 1, 6, 3, 5, 2], 6)
    for p, got in zip((1, 2, 5), token_knn_candidates(qs, q_len, ds, d_len, [1, 2, 5])):
        assert [c.tolist() for c in got] == _slow_sv(qs, q_len, ds, d_len, p)


def test_batch_bad_input():
    enc = FDE(FDEConfig(dim=3))
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match="add up"):
        enc.encode_batch(x, [1, 2], document=True)
    with pytest.raises(ValueError, match="positive"):
        enc.encode_batch(x, [4, 0], document=True)
    with pytest.raises(ValueError, match="positive"):
        chamfer_matrix(x, [2.0, 2.0], x, [4])
    with pytest.raises(ValueError):
        token_knn_candidates(x, [4], x, [4], per_token=0)
