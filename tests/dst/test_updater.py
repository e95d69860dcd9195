"""dst.updater: the schedule, the dense gradient, exact drop/grow on a hand-made layer,
counts, zero-initialised connections and optimizer state, the fit callback, bad input."""
import math

import pytest
import torch
from torch import nn

from sparsity_core.dst import (SET, DenseGradients, MaskUpdater, RigL, UpdateSchedule,
                               top_entries)
from sparsity_core.masks import apply_masks, current_masks, keep_count
from sparsity_core.schedules import cosine_drop_fraction
from sparsity_core.training import classification_loss, fit

from .helpers import Holder, batches, masked_mlp, train_step, train_with_updates, unmasked_twin

pytestmark = pytest.mark.usefixtures("one_thread")

#: A schedule whose first update (step 1) drops almost exactly ``alpha`` of each layer.
NEAR = dict(t_end=10**6, delta_t=1)


# --------------------------------------------------------------------------- schedule
def test_schedule_check_values_from_the_targets():
    s = UpdateSchedule(t_end=750, delta_t=100, alpha=0.3)
    assert [t for t in range(800) if s.is_update_step(t)] == [100, 200, 300, 400, 500, 600, 700]
    assert s.drop_fraction(100) == pytest.approx(0.28703, abs=1e-5)
    assert s.drop_fraction(700) == pytest.approx(0.0032783, abs=1e-6)
    assert s.drop_fraction(0) == s.drop_fraction(150) == s.drop_fraction(750) == 0.0
    assert s.drop_fraction(300) == cosine_drop_fraction(300, alpha=0.3, t_end=750)


@pytest.mark.parametrize("kwargs, error", [
    (dict(t_end=100, alpha=1.5), ValueError), (dict(t_end=100, alpha=-0.1), ValueError),
    (dict(t_end=100, delta_t=2.5), TypeError), (dict(t_end=100, delta_t=0), ValueError),
    (dict(t_end=0), ValueError), (dict(t_end=True), TypeError), (dict(t_end=100, alpha="0.3"), TypeError),
])
def test_schedule_rejects_bad_values(kwargs, error):
    with pytest.raises(error):
        UpdateSchedule(**kwargs)


# --------------------------------------------------------------------------- dense gradient
def test_dense_gradients_equal_those_of_an_unmasked_twin():
    model = masked_mlp()
    twin = unmasked_twin(model)
    capture = DenseGradients(model)
    batch = batches()(0)
    classification_loss(model, batch).backward()
    classification_loss(twin, batch).backward()
    grads = capture.pop()
    assert set(grads) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    for name, grad in grads.items():
        module = model.get_submodule(name.rsplit(".", 1)[0])
        torch.testing.assert_close(grad, twin.get_submodule(name.rsplit(".", 1)[0]).weight.grad)
        mask = module.parametrizations.weight[0].mask
        assert bool((grad[~mask] != 0).any())                        # dense: non-zero where masked
        torch.testing.assert_close(module.parametrizations.weight.original.grad, torch.where(mask, grad, 0))
    assert capture.pop() == {}
    with torch.no_grad():
        model(batch[0])                                             # no graph: nothing captured
    capture.remove()
    classification_loss(model, batch).backward()
    assert capture.pop() == {}


def test_a_weight_used_twice_gets_the_summed_gradient():
    holder = Holder(torch.ones(2, 3))
    apply_masks(holder, {"lin.weight": torch.tensor([[1, 0, 1], [0, 1, 0]])})
    capture = DenseGradients(holder)
    g1, g2 = torch.randn(2, 3), torch.randn(2, 3)
    ((holder.lin.weight * g1).sum() + (holder.lin.weight * g2).sum()).backward()
    torch.testing.assert_close(capture.pop()["lin.weight"], g1 + g2)


class _Spy(RigL):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = {}

    def grow_scores(self, name, weight, grad):
        self.seen[name] = grad.clone()
        return super().grow_scores(name, weight, grad)


def test_rigl_grow_scores_are_the_dense_gradient_of_the_update_step():
    model = masked_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rigl = _Spy(model, opt, UpdateSchedule(t_end=100, delta_t=2))
    get = batches()
    for i in range(2):
        train_step(model, opt, get(i))
        assert rigl.step(i) is None
    assert rigl.seen == {}                                          # read at update steps only
    twin = unmasked_twin(model)            # the weights step 2 sees
    classification_loss(twin, get(2)).backward()
    train_step(model, opt, get(2))
    assert rigl.step(2) is not None
    for name in rigl.names:
        torch.testing.assert_close(rigl.seen[name], twin.get_submodule(name[:3]).weight.grad)


# --------------------------------------------------------------------------- hand-made layer
W = torch.tensor([[0.5, -0.1, 0.0, 0.0],
                  [0.0, 0.9, 0.0, -0.2],
                  [0.3, 0.0, 0.05, 0.0]])
M = W != 0
G = torch.tensor([[0.05, 0.01, 0.7, -0.4],
                  [0.2, 0.04, 0.6, -0.03],
                  [0.06, -0.3, 0.02, 0.1]])


def _hand_update(updater_cls, grad, **kwargs):
    holder = Holder(W)
    apply_masks(holder, {"lin.weight": M})
    opt = torch.optim.SGD(holder.parameters(), lr=0.0, momentum=0.9)
    updater = updater_cls(holder, opt, UpdateSchedule(alpha=1 / 3, **NEAR), **kwargs)
    opt.zero_grad()
    holder.backward_with(grad)
    opt.step()
    return holder, opt, updater, updater.step(1)


def test_rigl_drops_the_smallest_weights_and_grows_the_largest_dense_gradients():
    holder, opt, _, update = _hand_update(RigL, G)
    expected = M.clone()
    expected[0, 1] = expected[2, 2] = False                          # |w| 0.1 and 0.05: dropped
    expected[0, 2] = expected[1, 2] = True                           # |g| 0.7 and 0.6: grown
    assert torch.equal(current_masks(holder)["lin.weight"], expected)
    torch.testing.assert_close(holder.lin.weight.detach(), torch.where(expected, W, 0))
    record = update["lin.weight"]
    assert (record.n_drop, record.n_grow, record.dropped, record.grown, record.regrown) == (2, 2, 2, 2, 0)
    assert record.nnz_before == record.nnz_after == 6 and record.active_rows == 3
    assert update.drop_fraction == pytest.approx(1 / 3)
    buf = opt.state[holder.lin.parametrizations.weight.original]["momentum_buffer"]
    assert torch.equal(buf, torch.where(expected & M, G, 0))        # kept: the step's; others: 0


def test_a_just_dropped_connection_may_regrow_and_keeps_its_value():
    grad = G.clone()
    grad[0, 1] = 0.8                                                  # the dropped -0.1 is the best
    holder, opt, _, update = _hand_update(RigL, grad)
    mask = current_masks(holder)["lin.weight"]
    assert bool(mask[0, 1]) and bool(mask[0, 2]) and not bool(mask[1, 2])
    assert holder.lin.weight[0, 1].item() == pytest.approx(-0.1)       # not re-initialised
    record = update["lin.weight"]
    assert (record.n_drop, record.n_grow, record.dropped, record.grown, record.regrown) == (2, 2, 1, 1, 1)
    buf = opt.state[holder.lin.parametrizations.weight.original]["momentum_buffer"]
    assert buf[0, 1].item() != 0 and buf[0, 2].item() == 0             # kept state; new at zero


def test_without_regrowth_dropped_and_grown_sets_are_disjoint():
    grad = G.clone()
    grad[0, 1] = 0.8
    holder, _, _, update = _hand_update(RigL, grad, regrow_dropped=False)
    mask = current_masks(holder)["lin.weight"]
    assert not bool(mask[0, 1]) and bool(mask[0, 2]) and bool(mask[1, 2])
    assert update["lin.weight"].regrown == 0 and update["lin.weight"].grown == 2


def test_top_entries_ties_go_to_the_lower_index():
    scores = torch.tensor([[1.0, 2.0, 2.0], [2.0, 0.0, 2.0]])
    allowed = torch.tensor([[True, True, True], [True, True, False]])
    assert torch.equal(top_entries(scores, 3, allowed),
                       torch.tensor([[False, True, True], [True, False, False]]))
    with pytest.raises(ValueError, match="among 5 allowed"):
        top_entries(scores, 6, allowed)


# --------------------------------------------------------------------------- invariants in training
@pytest.mark.parametrize("method", [SET, RigL])
@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
    lambda p: torch.optim.AdamW(p, lr=1e-2),
], ids=["sgd", "adamw"])
def test_counts_constant_and_pruned_state_zero_at_every_step(method, make_opt):
    model = masked_mlp()
    opt = make_opt(model.parameters())
    updater = method(model, opt, UpdateSchedule(t_end=13, delta_t=3, alpha=0.5),
                     generator=torch.Generator().manual_seed(1))
    counts = {n: int(m.sum()) for n, m in current_masks(model).items()}
    for _, before, update, masks in train_with_updates(model, opt, updater, 16):
        assert {n: int(m.sum()) for n, m in masks.items()} == counts
        for name, mask in masks.items():
            original = model.get_submodule(name[:3]).parametrizations.weight.original
            born = mask & ~before[name]
            assert bool((original[~mask] == 0).all()) and bool((original.grad[~mask] == 0).all())
            assert bool((original[born] == 0).all())                  # new connections start at 0
            for value in opt.state[original].values():
                if value.shape == original.shape:
                    assert bool((value[~mask] == 0).all()) and bool((value[born] == 0).all())
            if update is not None:
                record = update[name]
                assert record.grown == int(born.sum()) and record.dropped == int((before[name] & ~mask).sum())
    assert [u.step for u in updater.history] == [3, 6, 9, 12]


def test_the_drop_set_holds_the_smallest_magnitudes():
    model = masked_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    spy = _Spy(model, opt, UpdateSchedule(alpha=0.4, **NEAR), regrow_dropped=False)
    train_step(model, opt, batches()(0))
    weights = {n: model.get_submodule(n[:3]).weight.detach().abs().clone() for n in spy.names}
    before = current_masks(model)
    spy.step(1)
    for name, mask in current_masks(model).items():
        dropped, kept = before[name] & ~mask, before[name] & mask
        assert int(dropped.sum()) == keep_count(int(before[name].sum()), spy.history[0].drop_fraction)
        assert float(weights[name][dropped].max()) <= float(weights[name][kept].min())


def test_drop_fraction_follows_the_schedule_and_nothing_changes_between_updates():
    model = masked_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = UpdateSchedule(t_end=20, delta_t=3, alpha=0.6)
    updater = SET(model, opt, schedule, generator=torch.Generator().manual_seed(0))
    for i, before, update, after in train_with_updates(model, opt, updater, 26):
        if i in (3, 6, 9, 12, 15, 18):
            f = cosine_drop_fraction(i, alpha=0.6, t_end=20)
            assert update.step == i and update.drop_fraction == f
            for name in updater.names:
                assert update[name].n_drop == keep_count(int(before[name].sum()), f)
        else:
            assert update is None
            assert all(torch.equal(before[n], after[n]) for n in before)
    assert len(updater.history) == 6


def test_set_is_reproducible_given_its_generator():
    def run(seed):
        model = masked_mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        updater = SET(model, opt, UpdateSchedule(t_end=10, delta_t=2),
                      generator=torch.Generator().manual_seed(seed))
        for i in range(8):
            train_step(model, opt, batches()(i))
            updater.step(i)
        return current_masks(model)

    a, b, c = run(5), run(5), run(6)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not all(torch.equal(a[n], c[n]) for n in a)


def test_set_grows_uniformly_among_the_inactive_connections():
    holder = Holder(torch.ones(2, 10))
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[:, :5] = True
    apply_masks(holder, {"lin.weight": mask})
    opt = torch.optim.SGD(holder.parameters(), lr=0.1)
    updater = SET(holder, opt, UpdateSchedule(t_end=10), generator=torch.Generator().manual_seed(0),
                  regrow_dropped=False)
    kept = mask.clone()
    kept[0, :2] = False
    hits = torch.zeros(2, 10)
    trials = 2000
    for _ in range(trials):
        scores = updater.grow_scores("lin.weight", holder.lin.weight.detach(), None)
        hits += updater.select_grown("lin.weight", mask, kept, scores, 2).double()
    assert hits[mask].sum() == 0                                       # only inactive ones grow
    p, sd = 2 / 10, math.sqrt(trials * 0.2 * 0.8)
    assert bool(((hits[~mask] - trials * p).abs() < 5 * sd).all())


# --------------------------------------------------------------------------- fit
def test_rigl_as_a_fit_callback_changes_the_masks_at_a_constant_count():
    model = masked_mlp()
    start = current_masks(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rigl = RigL(model, opt, UpdateSchedule(t_end=45, delta_t=10))
    history = fit(model, batches(), steps=60, optimizer=opt, loss_fn=classification_loss,
                  callbacks=[rigl], progress=False)
    assert [u.step for u in rigl.history] == [10, 20, 30, 40]
    end = current_masks(model)
    assert all(int(end[n].sum()) == int(start[n].sum()) for n in start)
    assert any(not torch.equal(end[n], start[n]) for n in start)
    assert all(math.isfinite(v) for v in history.train_loss)
    assert sum(u.nnz_after for u in rigl.history) == 4 * sum(int(m.sum()) for m in start.values())


# --------------------------------------------------------------------------- bad input
def _parts():
    model = masked_mlp()
    return model, torch.optim.SGD(model.parameters(), lr=0.1), UpdateSchedule(t_end=10, delta_t=1)


def test_bad_constructor_arguments_raise_clear_errors():
    model, opt, schedule = _parts()
    with pytest.raises(ValueError, match="apply_masks"):
        RigL(nn.Linear(3, 2), opt, schedule)
    with pytest.raises(TypeError, match="nn.Module"):
        RigL("model", opt, schedule)
    with pytest.raises(TypeError, match="optimizer"):
        RigL(model, [p for p in model.parameters()], schedule)
    with pytest.raises(ValueError, match="does not train"):
        RigL(model, torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1), schedule)
    with pytest.raises(TypeError, match="UpdateSchedule"):
        RigL(model, opt, 100)
    with pytest.raises(TypeError, match="regrow_dropped"):
        RigL(model, opt, schedule, regrow_dropped="no")
    with pytest.raises(TypeError, match="generator"):
        SET(model, opt, schedule, generator=7)


def test_bad_steps_and_missing_gradients_raise():
    model, opt, schedule = _parts()
    rigl = RigL(model, opt, schedule)
    with pytest.raises(ValueError, match="step"):
        rigl.step(-1)
    with pytest.raises(TypeError, match="step"):
        rigl.step(1.0)
    with pytest.raises(ValueError, match="dense gradient"):
        rigl.step(1)                                                   # no backward pass since
    with pytest.raises(ValueError, match="another model"):
        rigl(1, masked_mlp())
    with pytest.raises(NotImplementedError, match="grow_scores"):
        base = MaskUpdater(model, opt, schedule)
        train_step(model, opt, batches()(0))
        base.step(1)


def test_scores_of_the_wrong_shape_or_not_finite_are_rejected():
    class Bad(SET):
        def grow_scores(self, name, weight, grad):
            return torch.zeros(3)

    model, opt, schedule = _parts()
    with pytest.raises(ValueError, match="shaped like"):
        Bad(model, opt, schedule).step(1)
    model, opt, schedule = _parts()
    rigl = RigL(model, opt, schedule)
    opt.zero_grad()
    (model.fc1.weight.sum() * float("nan") + model(torch.ones(2, 8)).sum()).backward()
    with pytest.raises(ValueError, match="non-finite"):
        rigl.step(1)
