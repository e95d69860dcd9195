"""MUVERA FDEs: the dimension formula, the Gray-code regions, and the identities that make the
FDE inner product a Chamfer similarity."""
import numpy as np
import pytest

from sparsity_core.retrieval.muvera import FDE, FDEConfig, chamfer, fde_dimension, gray_partition


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
