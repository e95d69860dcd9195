"""masks: exact counts, tie-breaking, global vs layer-wise, N:M, blocks, accounting, and
masks on a model that keep weights, gradients and optimizer state exactly zero."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sparsity_core.masks import (Mask, apply_masks, block_mask, current_masks, density,
                                 global_topk_masks, keep_count, nm_mask, random_mask,
                                 remove_masks, sparsity, sparsity_report, threshold_mask,
                                 topk_mask, update_mask, zero_masked_state_)
from sparsity_core.models import MLP
from sparsity_core.training import classification_loss, fit

FAST = settings(max_examples=25, deadline=None)


pytestmark = pytest.mark.usefixtures("one_thread")


def _scores(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- top-k
def test_30_by_4_at_half_has_exactly_60_ones():
    scores = _scores(30, 4)
    assert int(topk_mask(scores, 0.5).sum()) == 60
    assert int(topk_mask(scores, sparsity=0.5).sum()) == 60
    assert int(random_mask((30, 4), 0.5, generator=torch.Generator().manual_seed(0)).sum()) == 60
    # largest and smallest halves of distinct scores are complements
    assert torch.equal(topk_mask(scores, 0.5), ~topk_mask(scores, 0.5, largest=False))


def test_keep_count_rounds_half_up_despite_float_noise():
    assert keep_count(5, 0.5) == 3
    assert keep_count(30, 1 - 0.55) == 14  # 30 * 0.45 = 13.499999999999998 in floats
    assert keep_count(10, 1 - 0.85) == 2  # 1.5000000000000002
    assert keep_count(10, 0.25) == 3
    assert keep_count(10, 1 - 0.9) == 1
    assert keep_count(7, 1.0) == 7


@FAST
@given(rows=st.integers(1, 9), cols=st.integers(1, 9), d=st.floats(0.01, 1.0), seed=st.integers(0, 99))
def test_topk_keeps_the_exact_count_of_the_largest(rows, cols, d, seed):
    scores = _scores(rows, cols, seed=seed)
    mask = topk_mask(scores, d)
    k = keep_count(rows * cols, d)
    assert mask.dtype == torch.bool and mask.shape == scores.shape
    assert int(mask.sum()) == k
    if 0 < k < rows * cols:
        assert scores[mask].min() >= scores[~mask].max()
    per_row = topk_mask(scores, d, dim=-1)
    assert (per_row.sum(-1) == keep_count(cols, d)).all()


@FAST
@given(rows=st.integers(1, 5), cols=st.integers(1, 30), levels=st.integers(1, 4), largest=st.booleans(),
       data=st.data())
def test_selection_equals_a_stable_sort_with_many_ties(rows, cols, levels, largest, data):
    # the linear-time selection must pick exactly what "stable sort, keep the first k" picks
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 10**6)))
    scores = torch.randint(0, levels, (rows, cols), generator=g).float()
    allowed = torch.rand(rows, cols, generator=g) < 0.7
    allowed[:, 0] = True
    k = data.draw(st.integers(0, int(allowed.sum(1).min())))
    got = topk_mask(scores, k / cols, dim=-1, largest=largest, allowed=allowed) if k else None
    order = torch.sort(torch.where(allowed, scores if largest else -scores, -math.inf), dim=-1,
                       descending=True, stable=True).indices
    want = torch.zeros(rows, cols, dtype=torch.bool).scatter_(-1, order[:, :k], True)
    if k and keep_count(cols, k / cols) == k:
        assert torch.equal(got, want)


def test_ties_break_by_index():
    assert topk_mask(torch.zeros(2, 3), 0.5).flatten().tolist() == [True] * 3 + [False] * 3
    assert topk_mask(torch.tensor([1.0, 2.0, 2.0, 2.0]), 0.5).tolist() == [False, True, True, False]
    smallest = topk_mask(torch.tensor([1.0, 1.0, 0.0]), density=1 / 3, largest=False)
    assert smallest.tolist() == [False, False, True]


def test_allowed_restricts_the_kept_set():
    scores = torch.arange(8.0)
    allowed = torch.tensor([True, True, True, False, True, False, True, False])
    mask = topk_mask(scores, 0.25, allowed=allowed)
    assert mask.tolist() == [False] * 4 + [True, False, True, False]
    with pytest.raises(ValueError, match="allowed"):
        topk_mask(scores, 0.75, allowed=allowed)


def test_global_vs_layerwise_on_a_hand_made_case():
    scores = {"a": torch.tensor([10.0, 9.0, 8.0, 7.0]), "b": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    glob = global_topk_masks(scores, sparsity=0.5)
    assert glob["a"].all() and not glob["b"].any()  # class-blind: all of the big layer
    layer = {name: topk_mask(s, sparsity=0.5) for name, s in scores.items()}
    assert layer["a"].tolist() == [True, True, False, False]
    assert layer["b"].tolist() == [False, False, True, True]


@FAST
@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=4), s=st.floats(0.0, 0.99),
       seed=st.integers(0, 99))
def test_global_topk_total_count_is_exact(sizes, s, seed):
    scores = {f"t{i}": _scores(n, seed=seed + i) for i, n in enumerate(sizes)}
    masks = global_topk_masks(scores, sparsity=s)
    assert sum(int(m.sum()) for m in masks.values()) == keep_count(sum(sizes), 1 - s)


def test_threshold_mask():
    scores = torch.tensor([-1.0, 0.5, 2.0])
    assert threshold_mask(scores, 0.5).tolist() == [False, False, True]
    assert threshold_mask(scores, 0.5, largest=False).tolist() == [True, False, False]


def test_random_mask_is_exact_and_follows_the_generator():
    a = random_mask((50, 7), sparsity=0.9, generator=torch.Generator().manual_seed(1))
    b = random_mask((50, 7), sparsity=0.9, generator=torch.Generator().manual_seed(1))
    c = random_mask((50, 7), sparsity=0.9, generator=torch.Generator().manual_seed(2))
    assert int(a.sum()) == keep_count(350, 0.1) == 35
    assert torch.equal(a, b) and not torch.equal(a, c)


# ----------------------------------------------------------------------------- N:M, blocks
@FAST
@given(rows=st.integers(1, 6), groups=st.integers(1, 5), m=st.integers(1, 8), data=st.data())
def test_nm_mask_keeps_exactly_n_largest_in_every_group(rows, groups, m, data):
    n = data.draw(st.integers(1, m))
    scores = _scores(rows, groups * m, seed=rows * 31 + groups)
    mask = nm_mask(scores, n, m)
    g_mask, g_scores = mask.reshape(rows, groups, m), scores.reshape(rows, groups, m)
    assert (g_mask.sum(-1) == n).all()
    if n < m:
        kept_min = torch.where(g_mask, g_scores, torch.inf).amin(-1)
        dropped_max = torch.where(g_mask, -torch.inf, g_scores).amax(-1)
        assert (kept_min >= dropped_max).all()
    by_column = nm_mask(scores.T.contiguous(), n, m, dim=0)  # groups along dim 0
    assert torch.equal(by_column, mask.T)


def test_two_four_hand_case():
    scores = torch.tensor([[1.0, 4.0, 3.0, 2.0, 5.0, 5.0, 0.0, 5.0]])
    assert nm_mask(scores, 2, 4).int().tolist() == [[0, 1, 1, 0, 1, 1, 0, 0]]


def test_block_mask_keeps_whole_blocks():
    scores = _scores(8, 12).abs()
    mask = block_mask(scores, (2, 3), sparsity=0.75)  # 16 blocks, keep 4
    blocks = mask.reshape(4, 2, 4, 3).permute(0, 2, 1, 3).reshape(16, 6)
    assert (blocks.all(-1) | ~blocks.any(-1)).all()
    assert int(mask.sum()) == 4 * 6
    hand = torch.zeros(4, 4)
    hand[2:, :2] = 1.0  # the bottom-left 2x2 block is the largest
    hand[0, 3] = 1.5  # one big entry: top-right block has the largest max but a smaller L1
    assert block_mask(hand, (2, 2), 0.25)[2:, :2].all()
    assert int(block_mask(hand, (2, 2), 0.25).sum()) == 4


@pytest.mark.parametrize("call, argument", [
    (lambda s: topk_mask(s, sparsity=1.0), "sparsity"),
    (lambda s: topk_mask(s, sparsity=-0.1), "sparsity"),
    (lambda s: topk_mask(s, sparsity=float("nan")), "sparsity"),
    (lambda s: topk_mask(s, density=0.0), "density"),
    (lambda s: topk_mask(s, 0.5, sparsity=0.5), "exactly one"),
    (lambda s: topk_mask(s), "exactly one"),
    (lambda s: global_topk_masks({"a": s}, sparsity=1.5), "sparsity"),
    (lambda s: random_mask((4, 4), sparsity=1.0), "sparsity"),
    (lambda s: nm_mask(s, 5, 4), "n must be <= m"),
    (lambda s: nm_mask(s, 2, 3), "not divisible by m=3"),
    (lambda s: nm_mask(s, 0, 4), "n must satisfy 1 <= n"),
    (lambda s: block_mask(s, (3, 4), 0.5), "not divisible by block"),
    (lambda s: block_mask(s, (2, 2), 0.5, norm="l3"), "norm"),
    (lambda s: threshold_mask(s, float("nan")), "threshold"),
])
def test_bad_input_raises_a_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call(_scores(4, 8))


@pytest.mark.parametrize("call, argument", [
    (lambda s: topk_mask(s, sparsity="0.5"), "sparsity"),
    (lambda s: topk_mask(s, density=True), "density"),
    (lambda s: nm_mask(s, 2.0, 4), "n"),
    (lambda s: block_mask(s, (2, None), 0.5), r"block\[1\]"),
])
def test_an_argument_of_the_wrong_type_raises_a_type_error_naming_it(call, argument):
    with pytest.raises(TypeError, match=f"{argument} must be"):
        call(_scores(4, 8))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scores_raise(bad):
    scores = _scores(4, 8)
    scores[1, 2] = bad
    for call in (lambda: topk_mask(scores, 0.5), lambda: nm_mask(scores, 2, 4),
                 lambda: global_topk_masks({"w": scores}, 0.5), lambda: block_mask(scores, (2, 2), 0.5)):
        with pytest.raises(ValueError, match="scores.*finite"):
            call()


# ----------------------------------------------------------------------------- accounting
def test_sparsity_report_counts_exactly():
    masks = {"a": torch.tensor([True, False, False, False]), "b": torch.ones(2, 3, dtype=torch.bool)}
    report = sparsity_report(masks)
    assert (report.numel, report.nonzero) == (10, 7)
    assert report["a"].sparsity == 0.75 and report["b"].density == 1.0
    assert sparsity(masks) == 0.3 and density(masks) == 0.7
    assert sparsity(torch.tensor([0.0, 1.0, 0.0, 2.0])) == 0.5
    frame = report.to_frame()
    assert frame["name"].tolist() == ["a", "b", "total"] and frame["nonzero"].tolist() == [1, 6, 7]


# ----------------------------------------------------------------------------- on a model
def _model(seed=0):
    return MLP([6, 16, 3], generator=torch.Generator().manual_seed(seed))


def _masks(model, s=0.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: random_mask(p.shape, sparsity=s, generator=g)
            for n, p in model.named_parameters() if n.endswith("weight")}


def _batches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 6, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return lambda i: (x[(i * 8) % 32:(i * 8) % 32 + 8], y[(i * 8) % 32:(i * 8) % 32 + 8])


def _masked_state_is_zero(model, optimizer, masks):
    for name, mask in masks.items():
        module = model.get_submodule(name.rpartition(".")[0])
        original = module.parametrizations.weight.original
        assert (module.weight[~mask] == 0).all()  # effective
        assert (original[~mask] == 0).all()
        if original.grad is not None:
            assert (original.grad[~mask] == 0).all()
        state = optimizer.state[original]
        tensors = [v for v in state.values() if isinstance(v, torch.Tensor) and v.shape == mask.shape]
        assert tensors, "optimizer state was created"
        for value in tensors:
            assert (value[~mask] == 0).all()


def test_apply_masks_zeroes_weights_and_gradients():
    model = _model()
    before = model.fc1.weight.detach().clone()
    param = model.fc1.weight
    masks = _masks(model)
    apply_masks(model, masks)
    assert model.fc1.parametrizations.weight.original is param  # optimizers keep working
    assert isinstance(model.fc1.parametrizations.weight[0], Mask)
    w = model.fc1.weight
    assert torch.equal(w, torch.where(masks["fc1.weight"], before, 0.0))
    classification_loss(model, _batches()(0)).backward()
    assert (param.grad[~masks["fc1.weight"]] == 0).all()
    assert param.grad[masks["fc1.weight"]].abs().sum() > 0
    assert set(current_masks(model)) == {"fc1.weight", "fc2.weight"}
    assert all(torch.equal(current_masks(model)[n], masks[n]) for n in masks)


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True),
    lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-2, amsgrad=True),
], ids=["sgd-momentum-wd", "adamw", "adam-amsgrad-l2"])
def test_masked_weights_grads_and_optimizer_state_stay_zero_through_fit(make_opt):
    model = _model()
    masks = _masks(model)
    apply_masks(model, masks)
    start = {n: model.get_submodule(n.split(".")[0]).weight.detach().clone() for n in masks}
    opt = make_opt(model.parameters())
    fit(model, _batches(), steps=6, optimizer=opt, loss_fn=classification_loss, progress=False,
        callbacks=[lambda i, m: _masked_state_is_zero(m, opt, masks)])
    _masked_state_is_zero(model, opt, masks)
    for name, mask in masks.items():
        w = model.get_submodule(name.split(".")[0]).weight
        assert not torch.equal(w[mask], start[name][mask])  # the kept weights trained
        assert int((w != 0).sum()) <= int(mask.sum())


def test_masking_mid_training_needs_the_optimizer_state_zeroed():
    """What actually happens: stale momentum moves the hidden original (the effective
    weight stays 0); passing the optimizer to apply_masks prevents it."""
    def run(pass_optimizer):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        batches = _batches()
        fit(model, batches, steps=3, optimizer=opt, loss_fn=classification_loss, progress=False)
        masks = _masks(model)
        apply_masks(model, masks, optimizer=opt if pass_optimizer else None)
        fit(model, batches, steps=3, optimizer=opt, loss_fn=classification_loss, progress=False)
        mask = masks["fc1.weight"]
        assert (model.fc1.weight[~mask] == 0).all()  # effective weight: always exactly 0
        return model, opt, masks

    model, _, masks = run(False)
    assert model.fc1.parametrizations.weight.original[~masks["fc1.weight"]].abs().max() > 0  # drift
    model, opt, masks = run(True)
    _masked_state_is_zero(model, opt, masks)


def test_update_mask_in_place_and_grown_weights_start_at_zero():
    model = _model()
    masks = _masks(model)
    apply_masks(model, masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    fit(model, _batches(), steps=2, optimizer=opt, loss_fn=classification_loss, progress=False)
    buffer = model.fc1.parametrizations.weight[0].mask
    old = masks["fc1.weight"]
    new = old.clone()
    grow = (~old).nonzero()[:3]
    drop = old.nonzero()[:3]
    new[grow[:, 0], grow[:, 1]] = True
    new[drop[:, 0], drop[:, 1]] = False
    kept_before = model.fc1.weight.detach().clone()
    update_mask(model, "fc1.weight", new, optimizer=opt)
    assert model.fc1.parametrizations.weight[0].mask is buffer and torch.equal(buffer, new)
    w = model.fc1.weight
    assert (w[grow[:, 0], grow[:, 1]] == 0).all() and (w[~new] == 0).all()
    assert torch.equal(w[new & old], kept_before[new & old])
    zero_masked_state_(opt, model)
    _masked_state_is_zero(model, opt, {"fc1.weight": new})


@pytest.mark.parametrize("bake", [True, False])
def test_remove_masks_squashes(bake):
    model = _model()
    param = model.fc1.weight
    masks = _masks(model)
    apply_masks(model, masks)
    expected = model.fc1.weight.detach().clone()
    remove_masks(model, bake=bake)
    assert type(model.fc1) is nn.Linear and model.fc1.weight is param
    assert torch.equal(model.fc1.weight, expected)  # originals were zeroed on apply
    assert current_masks(model) == {}


def test_removing_masks_from_a_deep_copy_leaves_the_original_masked():
    import copy

    model = _model()
    masks = _masks(model)
    apply_masks(model, masks)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    expected = model(x).detach()
    twin = remove_masks(copy.deepcopy(model))
    assert type(twin.fc1) is nn.Linear and current_masks(twin) == {}
    assert torch.equal(model(x), expected) and set(current_masks(model)) == set(masks)
    remove_masks(model)
    assert type(model.fc1) is nn.Linear and torch.equal(model(x), expected)


def test_apply_masks_rejects_bad_masks():
    model = _model()
    with pytest.raises(ValueError, match="shape"):
        apply_masks(model, {"fc1.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="no module|not a tensor"):
        apply_masks(model, {"fc9.weight": torch.ones(16, 6, dtype=torch.bool)})
    with pytest.raises(ValueError, match="0 and 1"):
        apply_masks(model, {"fc1.weight": torch.full((16, 6), 0.5)})
    assert math.isclose(sparsity(_masks(model, 0.6)), 1 - (keep_count(96, 0.4) + keep_count(48, 0.4)) / 144)
