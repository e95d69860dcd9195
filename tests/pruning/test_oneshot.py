"""One-shot pruning of trained layers: the pattern selector, Wanda and SparseGPT."""
import math

import pytest
import torch

from sparsity_core.masks import pattern_mask
from sparsity_core.pruning.sparsegpt import dampened_hessian, sparsegpt_prune
from sparsity_core.pruning.wanda import WandaPruner, wanda_mask, wanda_scores
from sparsity_core.models import MLP
from sparsity_core.pruning import MagnitudePruner


def _layer(d_out=6, d_in=16, n=200, seed=0, correlated=True):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    X = torch.randn(n, d_in, generator=g, dtype=torch.float64)
    if correlated:  # mix the inputs so the Hessian is far from diagonal, and scale columns unevenly
        X = X @ torch.randn(d_in, d_in, generator=g, dtype=torch.float64) * torch.linspace(0.2, 3, d_in, dtype=torch.float64)
    return W, X


def _recon_error(W, W_new, X):
    return float(((X @ (W - W_new).T) ** 2).sum())


# ----------------------------------------------------------------------------- pattern_mask
def test_pattern_mask_layer_row_and_nm_counts():
    s = torch.arange(24.0).reshape(4, 6)
    layer = pattern_mask(s, sparsity=0.5)
    assert int(layer.sum()) == 12 and layer[2:].all() and not layer[:2].any()
    row = pattern_mask(s, sparsity=0.5, scope="row")
    assert row.sum(1).tolist() == [3, 3, 3, 3] and row[:, 3:].all()
    nm = pattern_mask(torch.randn(4, 8), nm=(2, 4))
    assert nm.reshape(4, 2, 4).sum(-1).eq(2).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(), "exactly one of sparsity and nm"),
    (dict(sparsity=0.5, nm=(2, 4)), "exactly one of sparsity and nm"),
    (dict(sparsity=1.0), "sparsity"),
    (dict(sparsity=-0.1), "sparsity"),
    (dict(nm=(5, 4)), "n must be <= m"),
    (dict(nm=(2, 3)), "divisible"),
    (dict(sparsity=0.5, scope="global"), "scope"),
])
def test_pattern_mask_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pattern_mask(torch.randn(4, 8), **kwargs)


# ----------------------------------------------------------------------------- Wanda
def test_wanda_hand_case_two_four():
    # the hand-worked case: weights 1..8, all-ones input, 2:4 keeps the two largest of each group
    W = torch.arange(1.0, 9.0).reshape(1, 8)
    mask = wanda_mask(W, torch.ones(8), nm=(2, 4))
    assert (W * mask).tolist() == [[0, 0, 3, 4, 0, 0, 7, 8]]


def test_wanda_scores_are_weight_times_input_norm():
    W = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    assert torch.equal(wanda_scores(W, torch.tensor([4.0, 1.0])), torch.tensor([[4.0, 2.0], [12.0, 0.5]]))


def test_wanda_compares_within_each_output_row():
    # row 0 has tiny weights, row 1 large ones: per-row selection keeps half of *each* row,
    # a layer-wide comparison (torch.ao's WandaSparsifier) would empty row 0
    W = torch.tensor([[0.1, 0.2, 0.3, 0.4], [10.0, 20.0, 30.0, 40.0]])
    norms = torch.ones(4)
    row = wanda_mask(W, norms, sparsity=0.5)
    assert row.tolist() == [[False, False, True, True], [False, False, True, True]]
    layer = wanda_mask(W, norms, sparsity=0.5, scope="layer")
    assert layer[0].sum() == 0 and layer[1].all()


def test_wanda_input_norms_change_the_choice():
    W = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    mask = wanda_mask(W, torch.tensor([100.0, 1.0, 1.0, 100.0]), sparsity=0.5)
    assert mask.tolist() == [[True, False, False, True]]


def test_wanda_rejects_bad_norms():
    with pytest.raises(ValueError, match="column_norms"):
        wanda_scores(torch.randn(3, 4), torch.ones(5))
    with pytest.raises(ValueError, match="column_norms"):
        wanda_scores(torch.randn(3, 4), torch.tensor([1.0, -1.0, 1.0, 1.0]))


def test_wanda_pruner_on_the_skeleton_keeps_per_row_counts():
    m = MLP([8, 12, 4], generator=torch.Generator().manual_seed(0))
    norms = {"fc1.weight": torch.linspace(0.1, 2, 8), "fc2.weight": torch.ones(12)}
    masks = WandaPruner(norms).compute_masks(m, 0.5)
    assert masks["fc1.weight"].sum(1).eq(4).all() and masks["fc2.weight"].sum(1).eq(6).all()
    equal = WandaPruner({k: torch.ones_like(v) for k, v in norms.items()}, scope="layer").compute_masks(m, 0.5)
    mag = MagnitudePruner().compute_masks(m, 0.5)
    assert all(torch.equal(equal[k], mag[k]) for k in mag)


# ----------------------------------------------------------------------------- SparseGPT
def test_sparsegpt_at_sparsity_zero_returns_the_weights():
    W, X = _layer()
    res = sparsegpt_prune(W, 2 * X.T @ X / len(X), sparsity=0.0)
    assert torch.equal(res.weight, W) and res.mask.all() and res.loss == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparsegpt_reconstructs_better_than_magnitude_at_equal_density(seed):
    W, X = _layer(d_out=8, d_in=32, seed=seed)
    res = sparsegpt_prune(W, 2 * X.T @ X / len(X), sparsity=0.5, blocksize=8)
    mag = W * pattern_mask(W.abs(), sparsity=0.5)
    assert int(res.mask.sum()) == W.numel() // 2
    assert torch.equal(res.weight != 0, res.mask)
    assert _recon_error(W, res.weight, X) < _recon_error(W, mag, X)


def test_sparsegpt_one_weight_prune_is_the_exact_obs_update():
    # prune one weight of a 1-row layer: it lands in column 0 (the smallest |w| there by far), where
    # SparseGPT may compensate with every other column, so its update must be OBS's closed form:
    # delta = -(w_q / [H^-1]_qq) H^-1[:, q], with loss w_q^2 / (2 [H^-1]_qq) (hassibi1993optimal)
    W, X = _layer(d_out=1, d_in=8, seed=3)
    W[0, 0] = 1e-3
    H = 2 * X.T @ X / len(X)
    res = sparsegpt_prune(W, H, sparsity=1 / 8)
    assert res.mask.tolist() == [[False] + [True] * 7]
    Hinv = torch.linalg.inv(dampened_hessian(H))
    q = 0
    expected = W[0] - (W[0, q] / Hinv[q, q]) * Hinv[:, q]
    assert torch.allclose(res.weight[0], expected, rtol=1e-9, atol=1e-12)
    assert math.isclose(res.loss, float(W[0, q] ** 2 / (2 * Hinv[q, q])), rel_tol=1e-9)


def test_sparsegpt_loss_matches_the_dampened_reconstruction_error():
    # the OBS losses SparseGPT accumulates sum to 1/2 * (W - W') H_damp (W - W')^T, row by row
    W, X = _layer(d_out=4, d_in=16, seed=4)
    H = 2 * X.T @ X / len(X)
    res = sparsegpt_prune(W, H, sparsity=0.5, blocksize=4)
    D = W - res.weight
    assert math.isclose(res.loss, float(0.5 * torch.einsum("ri,ij,rj->", D, dampened_hessian(H), D)), rel_tol=1e-8)


@pytest.mark.parametrize("n, m", [(2, 4), (4, 8), (1, 4)])
def test_sparsegpt_nm_structure_is_exact_in_every_group(n, m):
    W, X = _layer(d_out=5, d_in=32, seed=5)
    res = sparsegpt_prune(W, 2 * X.T @ X / len(X), nm=(n, m), blocksize=16)
    assert res.mask.reshape(5, -1, m).sum(-1).eq(n).all()
    assert (res.weight[~res.mask] == 0).all()


def test_sparsegpt_exact_count_over_uneven_blocks():
    W, X = _layer(d_out=3, d_in=20, seed=6)
    res = sparsegpt_prune(W, 2 * X.T @ X / len(X), sparsity=0.3, blocksize=7)
    assert int((~res.mask).sum()) == round(0.3 * 60)


def test_sparsegpt_dead_inputs_are_zeroed():
    W, X = _layer(d_out=3, d_in=8, seed=7, correlated=False)
    X[:, 2] = 0
    res = sparsegpt_prune(W, 2 * X.T @ X / len(X), sparsity=0.25)
    assert (res.weight[:, 2] == 0).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(sparsity=1.0), "sparsity"),
    (dict(nm=(3, 2)), "n must be <= m"),
    (dict(nm=(2, 3)), "divisible"),
    (dict(nm=(2, 4), blocksize=6), "blocksize"),
    (dict(), "exactly one of sparsity and nm"),
    (dict(sparsity=0.5, percdamp=-1), "percdamp"),
])
def test_sparsegpt_rejects_bad_input(kwargs, match):
    W, X = _layer(d_out=2, d_in=8)
    with pytest.raises(ValueError, match=match):
        sparsegpt_prune(W, 2 * X.T @ X / len(X), **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sparsity="0.5"), "sparsity must be a number"),
    (dict(nm=(2.0, 4)), "n must be an int"),
    (dict(sparsity=0.5, blocksize=None), "blocksize must be an int"),
    (dict(sparsity=0.5, percdamp="0.01"), "percdamp must be a number"),
])
def test_sparsegpt_rejects_arguments_of_the_wrong_type(kwargs, match):
    W, X = _layer(d_out=2, d_in=8)
    with pytest.raises(TypeError, match=match):
        sparsegpt_prune(W, 2 * X.T @ X / len(X), **kwargs)


def test_sparsegpt_rejects_a_hessian_of_the_wrong_shape():
    with pytest.raises(ValueError, match="hessian"):
        sparsegpt_prune(torch.randn(2, 8), torch.eye(6), sparsity=0.5)
