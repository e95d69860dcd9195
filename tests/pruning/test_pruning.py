"""pruning: the scoring-hook skeleton (layer / global / row scopes, never reviving),
gradual pruning through fit, IMP rewinding and rate arithmetic, sparse soups."""
import copy
import math

import pytest
import torch
from torch import nn

from sparsity_core.allocation import erdos_renyi_densities
from sparsity_core.masks import (current_masks, global_topk_masks, keep_count,
                                 random_mask, sparsity_report, topk_mask)
from sparsity_core.models import MLP
from sparsity_core.pruning import (GradualPruner, MagnitudePruner, Pruner, RandomPruner,
                                   imp_density, imp_rounds, iterative_magnitude_pruning, rewind,
                                   snapshot, sparse_soup)
from sparsity_core.schedules import CubicSchedule
from sparsity_core.training import classification_loss, fit

NAMES = ["fc1.weight", "fc2.weight", "fc3.weight"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(seed=0):
    return MLP([8, 24, 16, 4], generator=torch.Generator().manual_seed(seed))


def _batches(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 8, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    order = torch.randperm(64, generator=g)
    x, y = x[order], y[order]
    return lambda i: (x[(i * 16) % 64:(i * 16) % 64 + 16], y[(i * 16) % 64:(i * 16) % 64 + 16])


def _weights(model):
    return {n: model.get_submodule(n.split(".")[0]).weight.detach().clone() for n in NAMES}


def _train(steps=4, seed=0):
    def train(model):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
        fit(model, _batches(seed), steps=steps, optimizer=opt, loss_fn=classification_loss, progress=False)
    return train


# ----------------------------------------------------------------------------- the skeleton
def test_magnitude_layerwise_keeps_the_exact_count_of_largest_weights():
    model = _model()
    before = _weights(model)
    masks = MagnitudePruner().prune(model, 0.75)
    assert list(masks) == NAMES
    for name in NAMES:
        assert int(masks[name].sum()) == keep_count(before[name].numel(), 0.25)
        assert torch.equal(masks[name], topk_mask(before[name].abs(), sparsity=0.75))
        assert torch.equal(_weights(model)[name], torch.where(masks[name], before[name], 0.0))


def test_global_vs_layerwise_differ_as_expected():
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(1.0, 17.0).reshape(4, 4))  # large weights
        model[1].weight.copy_(torch.arange(1.0, 17.0).reshape(4, 4) / 100)  # small weights
    glob = MagnitudePruner(scope="global").compute_masks(model, 0.5)
    assert glob["0.weight"].all() and not glob["1.weight"].any()
    layer = MagnitudePruner().compute_masks(model, 0.5)
    assert all(int(m.sum()) == 8 for m in layer.values())
    assert layer["0.weight"].flatten().tolist() == [False] * 8 + [True] * 8
    trained = _model()
    scores = {n: w.abs() for n, w in _weights(trained).items()}
    assert all(torch.equal(a, b) for a, b in zip(
        MagnitudePruner(scope="global").compute_masks(trained, 0.8).values(),
        global_topk_masks(scores, sparsity=0.8).values()))


def test_row_scope_and_erk_allocation():
    model = _model()
    rows = MagnitudePruner(scope="row").compute_masks(model, 0.5)
    for name, mask in rows.items():
        assert (mask.sum(-1) == keep_count(mask.shape[-1], 0.5)).all()
    erk = MagnitudePruner(allocation=erdos_renyi_densities).compute_masks(model, 0.8)
    densities = erdos_renyi_densities({n: m.shape for n, m in erk.items()}, sparsity=0.8)
    for name, mask in erk.items():
        assert int(mask.sum()) == keep_count(mask.numel(), densities[name])


def test_pruning_never_revives_weights():
    model = _model()
    first = MagnitudePruner().prune(model, 0.5)
    with torch.no_grad():  # make pruned weights look important: they must stay pruned
        model.fc1.parametrizations.weight.original.add_(100.0)
    second = RandomPruner(generator=torch.Generator().manual_seed(0)).prune(model, 0.8)
    for name in NAMES:
        assert not (second[name] & ~first[name]).any()
        assert int(second[name].sum()) == keep_count(second[name].numel(), 0.2)
    third = MagnitudePruner().prune(model, 0.3)  # below the current sparsity: no change
    assert all(torch.equal(third[n], second[n]) for n in NAMES)
    glob = MagnitudePruner(scope="global").prune(model, 0.9)
    assert all(not (glob[n] & ~second[n]).any() for n in NAMES)
    assert sparsity_report(glob).nonzero == keep_count(sparsity_report(glob).numel, 0.1)


def test_a_method_overrides_only_the_score_hook():
    class Smallest(Pruner):  # keeps the smallest |W|: a toy method, one hook
        def score(self, name, weight, module):
            return -weight.abs()

    model = _model()
    w = _weights(model)
    masks = Smallest(["fc2.weight"]).prune(model, 0.5)
    assert list(masks) == ["fc2.weight"] and list(current_masks(model)) == ["fc2.weight"]
    assert torch.equal(masks["fc2.weight"], topk_mask(w["fc2.weight"].abs(), 0.5, largest=False))

    class Wrong(Pruner):
        def score(self, name, weight, module):
            return weight.flatten()

    with pytest.raises(ValueError, match="shaped like"):
        Wrong().compute_masks(model, 0.5)
    with pytest.raises(NotImplementedError):
        Pruner().compute_masks(model, 0.5)
    with pytest.raises(ValueError, match="scope"):
        MagnitudePruner(scope="rows")
    with pytest.raises(ValueError, match="sparsity"):
        MagnitudePruner().compute_masks(model, 1.0)
    with pytest.raises(ValueError, match="fc9"):
        MagnitudePruner(["fc9.weight"]).compute_masks(model, 0.5)


def test_random_pruner_follows_its_generator():
    a = RandomPruner(generator=torch.Generator().manual_seed(3)).compute_masks(_model(), 0.9)
    b = RandomPruner(generator=torch.Generator().manual_seed(3)).compute_masks(_model(1), 0.9)
    assert all(torch.equal(a[n], b[n]) for n in NAMES)  # random masks ignore the weights


# ----------------------------------------------------------------------------- gradual
def test_gradual_pruning_through_fit_follows_the_cubic_schedule():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    schedule = CubicSchedule(0.8, t0=2, n=4, dt=2)
    agp = GradualPruner(MagnitudePruner(), schedule, optimizer=opt)
    seen = []

    def check(step, m):
        masks = current_masks(m)
        if masks:
            if seen:
                assert all(not (masks[n] & ~seen[-1][n]).any() for n in NAMES)  # monotone
            seen.append(masks)
            for name, mask in masks.items():
                original = m.get_submodule(name.split(".")[0]).parametrizations.weight.original
                assert (original[~mask] == 0).all()
                assert (opt.state[original]["momentum_buffer"][~mask] == 0).all()

    fit(model, _batches(), steps=13, optimizer=opt, loss_fn=classification_loss, progress=False,
        callbacks=[agp, check])
    assert [t for t, _ in agp.history] == [2, 4, 6, 8, 10]
    assert [s for _, s in agp.history] == [schedule(t) for t in (2, 4, 6, 8, 10)]
    final = current_masks(model)
    assert all(int(final[n].sum()) == keep_count(final[n].numel(), 1 - 0.8) for n in NAMES)


# ----------------------------------------------------------------------------- IMP
def test_imp_rate_arithmetic():
    assert imp_density(0, 0.2) == 1.0
    assert math.isclose(imp_density(10, 0.2), 0.8 ** 10) and round(imp_density(10, 0.2), 3) == 0.107
    assert imp_rounds(0.2, 0.2) == 1 and imp_rounds(0.9, 0.2) == 11 and imp_rounds(0.0, 0.2) == 0
    with pytest.raises(ValueError, match="rate"):
        imp_density(3, 1.0)
    with pytest.raises(ValueError, match="sparsity"):
        imp_rounds(1.0, 0.2)
    with pytest.raises(ValueError, match="rounds"):
        imp_density(-1, 0.2)
    with pytest.raises(TypeError, match="rounds must be an int"):
        imp_density(2.0, 0.2)
    with pytest.raises(TypeError, match="rate must be a number"):
        imp_rounds(0.5, "0.2")


def test_rewind_restores_the_snapshot_on_kept_weights_and_zero_on_pruned():
    model = _model()
    init = snapshot(model)
    _train()(model)
    masks = MagnitudePruner().prune(model, 0.6)
    _train()(model)  # weights move away from init
    rewind(model, init, masks)
    for name in NAMES:
        module = model.get_submodule(name.split(".")[0])
        assert torch.equal(module.weight, torch.where(masks[name], init[name], 0.0))
        assert torch.equal(module.bias, init[name.replace("weight", "bias")])
        assert (module.parametrizations.weight.original[~masks[name]] == 0).all()
    # a mask that grows where the model is pruned (the random-mask control) also rewinds exactly
    g = torch.Generator().manual_seed(0)
    control = {n: random_mask(m.shape, sparsity=0.6, generator=g) for n, m in masks.items()}
    rewind(model, init, control)
    assert all(torch.equal(_weights(model)[n], torch.where(control[n], init[n], 0.0)) for n in NAMES)
    assert set(snapshot(model)) == set(init)  # plain names, masked or not
    with pytest.raises(ValueError, match="missing"):
        rewind(model, {k: v for k, v in init.items() if k != "fc1.bias"})


def test_iterative_magnitude_pruning_rounds_and_rewinding():
    model = _model()
    init = snapshot(model)
    starts = []

    def train(m):
        starts.append((current_masks(m), _weights(m)))
        _train(steps=3)(m)

    rate = {"fc1.weight": 0.2, "fc2.weight": 0.2, "fc3.weight": 0.1}  # output layer 10 %
    rounds = iterative_magnitude_pruning(model, train, rounds=3, rate=rate)
    assert [r.round for r in rounds] == [0, 1, 2, 3] and len(starts) == 4
    kept = {n: model.get_submodule(n.split(".")[0]).weight.numel() for n in NAMES}
    for r in rounds[1:]:
        for name in NAMES:
            kept[name] = keep_count(kept[name], 1 - rate[name])
            assert int(r.masks[name].sum()) == kept[name]
            assert not (r.masks[name] & ~rounds[r.round - 1].masks[name]).any()
        masks, weights = starts[r.round]  # what training started from: init under the mask
        assert all(torch.equal(weights[n], torch.where(masks[n], init[n], 0.0)) for n in NAMES)
    assert rounds[0].report.sparsity == 0.0 and rounds[-1].report.sparsity > 0.35


def test_imp_rewinds_to_an_early_step_when_given_a_callable():
    model = _model()
    saved = {}
    k = 2

    def train(m):
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        grab = (lambda i, mm: saved.update(snapshot(mm)) if i == k - 1 and not saved else None)
        fit(m, _batches(), steps=4, optimizer=opt, loss_fn=classification_loss, progress=False, callbacks=[grab])

    before_round_1 = []
    rounds = iterative_magnitude_pruning(
        model, train, rounds=1, rate=0.5, rewind_to=lambda: saved, pruner=MagnitudePruner(scope="global"),
        on_round=lambda r, m: before_round_1.append(r))
    assert before_round_1 == [0, 1] and saved
    assert sparsity_report(rounds[1].masks).nonzero == keep_count(sparsity_report(rounds[1].masks).numel, 0.5)
    with pytest.raises(ValueError, match="rate"):
        iterative_magnitude_pruning(_model(), _train(), rounds=1, rate={"fc1.weight": 0.2},
                                    pruner=MagnitudePruner(scope="global"))


# ----------------------------------------------------------------------------- soups
def test_sparse_soup_keeps_the_mask_exactly():
    base = _model()
    _train()(base)
    masks = MagnitudePruner().prune(base, 0.7)
    copies = []
    for seed in (1, 2, 3):  # same mask, different batch orders
        m = copy.deepcopy(base)
        _train(steps=5, seed=seed)(m)
        copies.append(m)
    soup = sparse_soup(copies)
    states = [snapshot(m) for m in copies]
    for name in NAMES:
        assert (soup[name][~masks[name]] == 0).all()
        mean = sum(s[name] for s in states) / 3
        assert torch.allclose(soup[name][masks[name]], mean[masks[name]], atol=1e-7)
    assert torch.allclose(soup["fc1.bias"], sum(s["fc1.bias"] for s in states) / 3)
    target = copy.deepcopy(base)
    rewind(target, soup, masks)
    assert sparsity_report(current_masks(target)).nonzero == sparsity_report(masks).nonzero
    assert all(torch.equal(_weights(target)[n], soup[n]) for n in NAMES)
    weighted = sparse_soup(states, masks, weights=[1, 0, 0])
    assert all(torch.equal(weighted[n], states[0][n]) for n in NAMES)


def test_soup_of_different_masks_is_refused():
    a, b = _model(), _model()
    MagnitudePruner().prune(a, 0.5)
    RandomPruner(generator=torch.Generator().manual_seed(0)).prune(b, 0.5)
    with pytest.raises(ValueError, match="share one mask"):
        sparse_soup([a, b])
    with pytest.raises(ValueError, match="weights"):
        sparse_soup([a, a], weights=[1.0])
    with pytest.raises(ValueError, match="at least one"):
        sparse_soup([])
