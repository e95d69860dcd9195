"""Slow, obvious reference twins of the fast pruning kernels, compared on random layers.

* SparseGPT (:func:`sparsity_core.pruning.sparsegpt.sparsegpt_prune`): a per-column OBS loop
  in plain Python floats (float64) after the paper's Algorithm 1 (frantar2023sparsegpt) and
  ``IST-DASLab/sparsegpt`` ``SparseGPT.fasterprune``: dampened Hessian, upper Cholesky factor
  of its inverse, the mask chosen at the start of each block of ``blocksize`` columns by
  ``w^2 / U_jj^2`` (or per group of ``m`` columns for N:M), and the OBS error of every pruned
  weight propagated at once to all the columns right of it (no lazy batches).
* DSnoT (:func:`sparsity_core.pruning.dsnot.dsnot_mask`): the grow / prune rules of its
  docstring applied literally, one row and one cycle at a time.

The twins are written from the docstrings and the papers, not from the package code; the
only shared piece is :func:`sparsity_core.masks.keep_count`, the rounding convention the
SparseGPT docstring names for the pruned counts.
"""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsity_core.masks import keep_count
from sparsity_core.pruning.dsnot import UPDATE_THRESHOLD, dsnot_mask
from sparsity_core.pruning.sparsegpt import dampened_hessian, sparsegpt_prune

FAST = settings(max_examples=25, deadline=None)

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- SparseGPT twin
def _twin_dampened_hessian(hessian, percdamp):
    """Dead inputs (H_jj = 0) get H_jj = 1, then percdamp * mean(diag H) on the diagonal."""
    H = hessian.to(torch.float64).tolist()
    d = len(H)
    dead = [j for j in range(d) if H[j][j] == 0]
    for j in dead:
        H[j][j] = 1.0
    damp = percdamp * sum(H[j][j] for j in range(d)) / d
    for j in range(d):
        H[j][j] += damp
    return H, dead


def _sparsegpt_twin(weight, hessian, *, sparsity=None, nm=None, blocksize=128, percdamp=0.01):
    """SparseGPT, one column at a time, in Python floats. Returns (weight, mask, loss)."""
    rows, cols = weight.shape
    H, dead = _twin_dampened_hessian(hessian, percdamp)
    Hinv = torch.linalg.inv(torch.tensor(H, dtype=torch.float64))
    # U: upper triangular with H^-1 = U^T U (the transpose of the lower Cholesky factor)
    U = torch.linalg.cholesky(Hinv).T.tolist()
    W = weight.to(torch.float64).tolist()
    for r in range(rows):
        for j in dead:
            W[r][j] = 0.0                                   # dead inputs never contributed
    pruned = [[False] * cols for _ in range(rows)]
    pruned_count, loss = 0, 0.0
    for j in range(cols):
        if sparsity is not None and j % blocksize == 0:
            # the block's mask, on the current (already updated) weights: the smallest
            # saliencies w^2 / U_cc^2 of the block, ties by (row, column); the block prunes what
            # brings the layer's pruned count, over the blocks so far, to its rounded target
            end = min(j + blocksize, cols)
            seen = rows * end
            target = seen - keep_count(seen, 1.0 - sparsity)
            ranked = sorted((W[r][c] ** 2 / U[c][c] ** 2, r, c) for r in range(rows) for c in range(j, end))
            for _, r, c in ranked[:target - pruned_count]:
                pruned[r][c] = True
            pruned_count = target
        if nm is not None and j % nm[1] == 0:
            n, m = nm
            for r in range(rows):                            # per row: prune the m - n least salient
                ranked = sorted((W[r][c] ** 2 / U[c][c] ** 2, c) for c in range(j, j + m))
                for _, c in ranked[:m - n]:
                    pruned[r][c] = True
        for r in range(rows):
            if pruned[r][j]:
                err = W[r][j] / U[j][j]                       # OBS: (w - 0) / U_jj
                for c in range(j, cols):                      # compensate with this and later columns
                    W[r][c] -= err * U[j][c]
                W[r][j] = 0.0
                loss += 0.5 * err ** 2
    mask = torch.tensor([[not p for p in row] for row in pruned], dtype=torch.bool).reshape(rows, cols)
    return torch.tensor(W, dtype=torch.float64).reshape(rows, cols), mask, loss


@st.composite
def _sparsegpt_cases(draw):
    rows = draw(st.integers(1, 5))
    if draw(st.booleans()):
        n, m = draw(st.sampled_from([(2, 4), (1, 4), (3, 4), (4, 8), (1, 2), (2, 2)]))
        cols = m * draw(st.integers(1, 24 // m))
        options = {"nm": (n, m), "blocksize": m * draw(st.integers(1, 3))}
    else:
        cols = draw(st.integers(1, 23))
        options = {"sparsity": draw(st.floats(0.0, 0.9)), "blocksize": draw(st.integers(1, 9))}
    # percdamp >= 0.01 (the default): at 0.001 on rank-deficient Hessians (condition ~1e4) the
    # two float64 computations drift apart by ~1e-10 relative; at 0.01 by ~1e-12 at worst
    options["percdamp"] = draw(st.sampled_from([0.01, 0.05, 0.1, 1.0]))
    nsamples = draw(st.integers(1, 2 * cols + 2))               # rank-deficient Hessians too
    n_dead = draw(st.integers(0, min(2, cols)))
    integer_weights = draw(st.booleans())                     # exact ties in the first block
    zero_share = draw(st.sampled_from([0.0, 0.0, 0.4]))         # zero saliencies: ties across rows and columns
    g = torch.Generator().manual_seed(draw(st.integers(0, 2 ** 31 - 1)))
    X = torch.randn(nsamples, cols, generator=g, dtype=torch.float64) \
        @ torch.randn(cols, cols, generator=g, dtype=torch.float64)          # correlated inputs
    X[:, torch.randperm(cols, generator=g)[:n_dead]] = 0.0
    W = torch.randn(rows, cols, generator=g, dtype=torch.float64)
    if integer_weights:
        W = (2 * W).round()
    W[torch.rand(rows, cols, generator=g) < zero_share] = 0.0
    return W, 2 * X.T @ X / nsamples, options


def _assert_same_sparsegpt(W, H, options):
    res = sparsegpt_prune(W, H, **options)
    weight, mask, loss = _sparsegpt_twin(W, H, **options)
    assert torch.equal(res.mask, mask)
    torch.testing.assert_close(res.weight, weight, rtol=1e-10, atol=1e-10)
    assert math.isclose(res.loss, loss, rel_tol=1e-9, abs_tol=1e-12)
    assert (res.weight[~res.mask] == 0).all()


@FAST
@given(_sparsegpt_cases())
def test_sparsegpt_equals_the_per_column_obs_twin(case):
    _assert_same_sparsegpt(*case)


@pytest.mark.parametrize("options", [{"sparsity": 0.5, "blocksize": 5}, {"sparsity": 0.7, "blocksize": 128},
                                     {"nm": (2, 4), "blocksize": 8}, {"sparsity": 1 / 3, "blocksize": 1}])
def test_sparsegpt_equals_the_twin_on_a_wider_layer(options):
    # a layer large enough that the blocks' lazy updates do real work (48 columns, 6 rows)
    g = torch.Generator().manual_seed(11)
    X = torch.randn(80, 48, generator=g, dtype=torch.float64) @ torch.randn(48, 48, generator=g, dtype=torch.float64)
    X[:, 7] = 0.0
    W = torch.randn(6, 48, generator=g, dtype=torch.float64)
    _assert_same_sparsegpt(W, 2 * X.T @ X / len(X), options)


def test_twin_dampened_hessian_matches():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(20, 6, generator=g, dtype=torch.float64)
    X[:, 1] = 0
    H = 2 * X.T @ X / 20
    twin, dead = _twin_dampened_hessian(H, 0.05)
    assert dead == [1]
    torch.testing.assert_close(dampened_hessian(H, 0.05), torch.tensor(twin, dtype=torch.float64),
                               rtol=1e-14, atol=1e-14)


def test_sparsegpt_ties_break_row_major_within_the_block():
    # five zero weights tie at saliency 0; two are pruned: the first two in row-major order
    # of the block, (0, 1) and (0, 2) (column-major order would give (1, 0) and (0, 1))
    W = torch.tensor([[5.0, 0.0, 0.0, 3.0], [0.0, 4.0, 0.0, 0.0]], dtype=torch.float64)
    H = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    expected = [[True, False, False, True], [True, True, True, True]]
    assert sparsegpt_prune(W, H, sparsity=0.25, blocksize=4).mask.tolist() == expected
    assert _sparsegpt_twin(W, H, sparsity=0.25, blocksize=4)[1].tolist() == expected


def test_the_twin_comparison_catches_a_missing_error_propagation():
    # the twin with the OBS compensation switched off (plain masking of the chosen weights)
    # must be told apart by the comparison: guards against a comparison that cannot fail
    g = torch.Generator().manual_seed(5)
    X = torch.randn(40, 12, generator=g, dtype=torch.float64) @ torch.randn(12, 12, generator=g, dtype=torch.float64)
    W, H = torch.randn(3, 12, generator=g, dtype=torch.float64), 2 * X.T @ X / 40
    res = sparsegpt_prune(W, H, sparsity=0.5, blocksize=4)
    weight, mask, _ = _sparsegpt_twin(W, H, sparsity=0.5, blocksize=4)
    assert torch.allclose(res.weight, weight, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(res.weight, W * res.mask, rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------------------- DSnoT twin
def _sign(x):
    return (x > 0) - (x < 0)


def _dsnot_twin(weight, mask, means, variances, norms, *, max_cycles=50, update_threshold=UPDATE_THRESHOLD,
                var_power=1.0, same_sign=False):
    """DSnoT's rules, literally, row by row and cycle by cycle (the dsnot module docstring)."""
    W, mu, var, nrm = weight.tolist(), means.tolist(), variances.tolist(), norms.tolist()
    out = []
    for i, row in enumerate(W):
        kept = mask[i].tolist()
        c = [w * m for w, m in zip(row, mu)]                  # c_ij = W_ij mu_j
        eps = sum(c[j] for j in range(len(c)) if not kept[j])  # E[dense - sparse output]_i
        # grow score |c| / sigma^(2p) (sigma^2 = the variance); zero variance: infinite
        grow = [math.inf if var[j] == 0 else abs(c[j]) / var[j] ** var_power for j in range(len(c))]
        wanda = [abs(row[j]) * nrm[j] for j in range(len(c))]
        # candidate lists, ordered once from the initial mask, ties by column index
        lists = {
            "grow_pos": sorted((j for j in range(len(c)) if not kept[j] and c[j] > 0), key=lambda j: (-grow[j], j)),
            "grow_neg": sorted((j for j in range(len(c)) if not kept[j] and c[j] < 0), key=lambda j: (-grow[j], j)),
            "prune_neg": sorted((j for j in range(len(c)) if kept[j] and c[j] < 0), key=lambda j: (wanda[j], j)),
            "prune_pos": sorted((j for j in range(len(c)) if kept[j] and c[j] > 0), key=lambda j: (wanda[j], j)),
        }
        walked = {k: 0 for k in lists}
        for _ in range(max_cycles):
            if not abs(eps) > update_threshold:
                break
            # eps > 0: revive a pruned weight with c > 0, prune a kept one with c < 0 (and vice versa)
            g_list, p_list = ("grow_pos", "prune_neg") if eps > 0 else ("grow_neg", "prune_pos")
            if walked[g_list] == len(lists[g_list]) or walked[p_list] == len(lists[p_list]):
                break                                         # out of candidates: the row stops
            g, p = lists[g_list][walked[g_list]], lists[p_list][walked[p_list]]
            after = eps - c[g] + c[p]
            if same_sign and _sign(after) != _sign(eps):
                break
            kept[g], kept[p] = True, False
            eps = after
            walked[g_list] += 1
            walked[p_list] += 1
        out.append(kept)
    return torch.tensor(out, dtype=torch.bool).reshape(mask.shape)


@st.composite
def _dsnot_cases(draw):
    rows, cols = draw(st.integers(1, 6)), draw(st.integers(2, 24))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2 ** 31 - 1)))
    f64 = {"generator": g, "dtype": torch.float64}
    if draw(st.booleans()):
        # a coarse grid: exact ties in every score, exact sums (small dyadic numbers)
        W = torch.randint(-4, 5, (rows, cols), generator=g).double() / 4
        mu = torch.randint(-2, 3, (cols,), generator=g).double() / 2
        var = 4.0 ** torch.randint(-1, 2, (cols,), generator=g).double()
        norms = torch.randint(1, 3, (cols,), generator=g).double()
        threshold = draw(st.sampled_from([0.0, 0.25, 1.0]))
    else:
        W = torch.randn(rows, cols, **f64)
        mu = torch.randn(cols, **f64)
        mu[torch.rand(cols, generator=g) < 0.15] = 0.0          # c = 0: in no list
        var = torch.rand(cols, **f64) + 0.01
        norms = torch.rand(cols, **f64) * 3
        threshold = draw(st.sampled_from([0.0, UPDATE_THRESHOLD, 0.1, 0.5]))
    if draw(st.booleans()):
        var[int(torch.randint(cols, (1,), generator=g))] = 0.0  # one constant input
    density = draw(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]))
    mask = torch.rand(rows, cols, generator=g) < density
    options = {"max_cycles": draw(st.sampled_from([0, 1, 2, 3, 5, 50])), "update_threshold": threshold,
               "var_power": draw(st.sampled_from([0.5, 1.0, 2.0])), "same_sign": draw(st.booleans())}
    return W, mask, mu, var, norms, options


@settings(max_examples=100, deadline=None)   # ~2 ms an example; 25 rarely reach a tie on the walk
@given(_dsnot_cases())
def test_dsnot_equals_the_per_row_twin(case):
    W, mask, mu, var, norms, options = case
    out = dsnot_mask(W, mask, mu, var, norms, **options)
    assert torch.equal(out, _dsnot_twin(W, mask, mu, var, norms, **options))
    assert torch.equal(out.sum(1), mask.sum(1))


@pytest.mark.parametrize("same_sign", [False, True])
def test_dsnot_equals_the_twin_on_a_wanda_start(same_sign):
    # the pipeline's setting: Wanda's per-row mask on a wider layer, the default options
    from sparsity_core.pruning.wanda import wanda_mask
    g = torch.Generator().manual_seed(3)
    X = torch.randn(256, 64, generator=g, dtype=torch.float64) * torch.rand(64, generator=g, dtype=torch.float64) \
        + torch.randn(64, generator=g, dtype=torch.float64)
    W = torch.randn(16, 64, generator=g, dtype=torch.float64)
    mu, var, norms = X.mean(0), X.var(0, unbiased=False), X.norm(dim=0)
    mask = wanda_mask(W, norms, sparsity=0.6)
    out = dsnot_mask(W, mask, mu, var, norms, same_sign=same_sign)
    assert not torch.equal(out, mask)
    assert torch.equal(out, _dsnot_twin(W, mask, mu, var, norms, same_sign=same_sign))


def test_the_dsnot_twin_follows_the_hand_worked_case():
    # tests/pruning/test_dsnot.py's hand case, worked from the docstring: the twin agrees
    ones = torch.ones(6, dtype=torch.float64)
    W = torch.tensor([[5.0, -0.3, -0.2, 1.0, 0.5, 0.1]], dtype=torch.float64)
    var = torch.tensor([1.0, 1.0, 0.25, 1.0, 1.0, 1.0], dtype=torch.float64)
    mask = torch.tensor([[True, False, False, True, True, False]])
    assert _dsnot_twin(W, mask, ones, var, ones).tolist() == [[True, False, True, True, False, False]]
    assert torch.equal(_dsnot_twin(W, mask, ones, var, ones, same_sign=True), mask)
    assert _dsnot_twin(W, mask, ones, ones, ones).tolist() == [[True, True, False, True, False, False]]


def test_dsnot_ties_break_by_column_index():
    # eps = -1 - 1 = -2 < 0: grow a pruned c < 0 (indices 0 and 1 tie at |c| / var = 1) and prune
    # a kept c > 0 (indices 2 and 3 tie at Wanda score 0.5): the lower index of each wins
    ones = torch.ones(5, dtype=torch.float64)
    W = torch.tensor([[-1.0, -1.0, 0.5, 0.5, 3.0]], dtype=torch.float64)
    mask = torch.tensor([[False, False, True, True, True]])
    expected = [[True, False, False, True, True]]
    assert dsnot_mask(W, mask, ones, ones, ones, max_cycles=1).tolist() == expected
    assert _dsnot_twin(W, mask, ones, ones, ones, max_cycles=1).tolist() == expected
    # |eps| = 2 exactly: a threshold of 2 stops the row before any swap, 1.75 does not
    for fn in (dsnot_mask, _dsnot_twin):
        assert torch.equal(fn(W, mask, ones, ones, ones, update_threshold=2.0), mask)
        assert fn(W, mask, ones, ones, ones, max_cycles=1, update_threshold=1.75).tolist() == expected


@pytest.mark.parametrize("var_power", [0.5, 1.0, 2.0])
def test_dsnot_constant_inputs_tie_at_an_infinite_grow_score(var_power):
    # two constant inputs (variance 0), both pruned with c > 0: both have an infinite grow score,
    # so they tie and the lower index is grown first (the reference divides by var ** p and gets
    # inf for both: a stable sort keeps index order). Clamping the variance to the smallest float
    # (an earlier version) grew index 1 for p = 0.5 and 1.
    ones = torch.ones(4, dtype=torch.float64)
    W = torch.tensor([[0.5, 1.0, -30.0, 0.1]], dtype=torch.float64)
    mask = torch.tensor([[False, False, True, True]])
    var = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    expected = [[True, False, False, True]]
    assert _dsnot_twin(W, mask, ones, var, ones, max_cycles=1, var_power=var_power).tolist() == expected
    # every power must agree: a shared infinite score cannot depend on p
    outs = {p: dsnot_mask(W, mask, ones, var, ones, max_cycles=1, var_power=p).tolist() for p in (0.5, 1.0, 2.0)}
    assert outs[var_power] == expected and len({str(o) for o in outs.values()}) == 1
