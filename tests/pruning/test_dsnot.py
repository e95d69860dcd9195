"""DSnoT's prune-and-grow swaps: hand-worked cycles, invariants, and the pipeline's use of them."""
import pytest
import torch

from sparsity_core.pruning.dsnot import dsnot_mask
from sparsity_core.pruning.sequential import prune_sequential
from sparsity_core.pruning.wanda import wanda_mask

ONES6 = torch.ones(6, dtype=torch.float64)


def _hand_case():
    # means 1, so each weight's contribution c_j = W_j; Wanda (norms 1) keeps |W| = 5, 1, 0.5.
    W = torch.tensor([[5.0, -0.3, -0.2, 1.0, 0.5, 0.1]], dtype=torch.float64)
    var = torch.tensor([1.0, 1.0, 0.25, 1.0, 1.0, 1.0], dtype=torch.float64)
    mask = wanda_mask(W, ONES6, sparsity=0.5)
    assert mask.tolist() == [[True, False, False, True, True, False]]
    return W, mask, var


def test_hand_worked_two_cycles():
    W, mask, var = _hand_case()
    # eps = -0.3 - 0.2 + 0.1 = -0.4 < 0. Grow the pruned negative weight with the most negative
    # c / var: index 2 (-0.2 / 0.25 = -0.8 beats -0.3); prune the kept positive weight with the
    # smallest Wanda score: index 4 (0.5). eps -> -0.4 + 0.5 + 0.2 = 0.3.
    # Cycle 2: eps > 0 needs a kept weight with c < 0 in the initial list: there is none: stop.
    out = dsnot_mask(W, mask, ONES6, var, ONES6)
    assert out.tolist() == [[True, False, True, True, False, False]]
    # With the sign check the first swap would flip eps from - to +: nothing changes.
    assert torch.equal(dsnot_mask(W, mask, ONES6, var, ONES6, same_sign=True), mask)
    # The grow order follows c / var: with equal variances index 1 (-0.3) is grown instead.
    out = dsnot_mask(W, mask, ONES6, ONES6, ONES6)
    assert out.tolist() == [[True, True, False, True, False, False]]
    # A constant input (zero variance) has an infinite grow score: it is grown first.
    var0 = var.clone()
    var0[1] = 0.0
    assert torch.equal(dsnot_mask(W, mask, ONES6, var0, ONES6), out)


def test_nothing_moves_without_cycles_or_above_the_threshold():
    W, mask, var = _hand_case()
    assert torch.equal(dsnot_mask(W, mask, ONES6, var, ONES6, max_cycles=0), mask)
    assert torch.equal(dsnot_mask(W, mask, ONES6, var, ONES6, update_threshold=0.4), mask)   # |eps| = 0.4
    assert not torch.equal(dsnot_mask(W, mask, ONES6, var, ONES6, update_threshold=0.39), mask)


def _random_layer(seed=0, d_out=16, d_in=64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(512, d_in, generator=g, dtype=torch.float64) * torch.rand(d_in, generator=g, dtype=torch.float64) \
        + torch.randn(d_in, generator=g, dtype=torch.float64)
    W = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    return W, X, X.mean(0), X.var(0, unbiased=False), X.norm(dim=0)


def _expected_error(W, mask, mu):
    return (torch.where(mask, 0.0, W) * mu).sum(1)     # (D_out,) E[dense - sparse output]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_keep_their_count_and_the_sign_check_only_shrinks_the_expected_error(seed):
    W, X, mu, var, norms = _random_layer(seed)
    mask = wanda_mask(W, norms, sparsity=0.7)
    for same_sign in (False, True):
        out = dsnot_mask(W, mask, mu, var, norms, same_sign=same_sign)
        assert torch.equal(out.sum(1), mask.sum(1))
        assert not torch.equal(out, mask)
    before = _expected_error(W, mask, mu).abs()
    after = _expected_error(W, dsnot_mask(W, mask, mu, var, norms, same_sign=True), mu).abs()
    assert (after <= before + 1e-12).all() and (after < before).any()


def test_bad_input():
    W, mask, var = _hand_case()
    with pytest.raises(ValueError, match="bool"):
        dsnot_mask(W, mask.double(), ONES6, var, ONES6)
    with pytest.raises(ValueError, match="means"):
        dsnot_mask(W, mask, torch.ones(5), var, ONES6)
    with pytest.raises(ValueError, match="non-negative"):
        dsnot_mask(W, mask, ONES6, -var, ONES6)
    with pytest.raises(ValueError, match="max_cycles"):
        dsnot_mask(W, mask, ONES6, var, ONES6, max_cycles=-1)
    with pytest.raises(TypeError, match="max_cycles must be an int"):
        dsnot_mask(W, mask, ONES6, var, ONES6, max_cycles=2.0)


def test_pipeline_refines_attention_only_and_keeps_exact_sparsity():
    from tests.pruning.test_sequential import _batches, _tinygpt
    wanda, dsnot = _tinygpt(), _tinygpt()
    rw = prune_sequential(wanda, _batches(), method="wanda", sparsity=0.7)
    rd = prune_sequential(dsnot, _batches(), method="dsnot", sparsity=0.7)
    assert [r.kept for r in rw] == [r.kept for r in rd]
    params = dict(wanda.named_parameters()), dict(dsnot.named_parameters())
    # block 0 sees identical inputs in both runs: its MLP masks are Wanda's, its attention masks differ
    mlp, attn = "blocks.0.mlp.c_fc.weight", "blocks.0.attn.c_attn.weight"
    assert torch.equal(params[0][mlp] != 0, params[1][mlp] != 0)
    assert not torch.equal(params[0][attn] != 0, params[1][attn] != 0)
    # a bare string is one name, not a set of substrings: "attn_mlp" matches no layer
    bare, none = _tinygpt(), _tinygpt()
    prune_sequential(bare, _batches(), method="dsnot", sparsity=0.7, dsnot_skip="attn_mlp")
    prune_sequential(none, _batches(), method="dsnot", sparsity=0.7, dsnot_skip=())
    assert all(torch.equal(a, b) for a, b in zip(bare.parameters(), none.parameters()))
    with pytest.raises(ValueError, match="unstructured"):
        prune_sequential(_tinygpt(), _batches(), method="dsnot", nm=(2, 4))


def test_pipeline_with_zero_cycles_is_wanda():
    from tests.pruning.test_sequential import _batches, _tinygpt
    wanda, dsnot = _tinygpt(), _tinygpt()
    prune_sequential(wanda, _batches(), method="wanda", sparsity=0.7)
    prune_sequential(dsnot, _batches(), method="dsnot", sparsity=0.7, dsnot_skip=(), dsnot_options={"max_cycles": 0})
    for (name, a), (_, b) in zip(wanda.named_parameters(), dsnot.named_parameters()):
        assert torch.equal(a, b), name
