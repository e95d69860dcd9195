"""dst.methods: sparse momentum's redistribution (hand-worked), SRigL's constant fan-in and
neuron ablation (hand-worked), ERK budgets kept through RigL training, bad input."""
import pytest
import torch
from torch import nn

from sparsity_core.allocation import erdos_renyi_densities, layer_shapes
from sparsity_core.dst import (SNFS, SRigL, CondensedLinear, RigL, UpdateSchedule, ablated_neurons,
                               constant_fan_in_mask, fan_in, redistribute, topk_per_row)
from sparsity_core.masks import apply_masks, current_masks, keep_count, random_mask
from sparsity_core.models import MLP
from sparsity_core.training import classification_loss, fit

from .helpers import Holder, batches, masked_mlp, train_with_updates

pytestmark = pytest.mark.usefixtures("one_thread")

NEAR = dict(t_end=10**6, delta_t=1)


# --------------------------------------------------------------------------- redistribute
@pytest.mark.parametrize("total, shares, capacity, expected", [
    (10, [1, 1, 2], [100, 100, 100], [3, 2, 5]),        # 2.5, 2.5, 5: the tie goes to layer 0
    (10, [1, 1, 8], [10, 10, 3], [4, 3, 3]),            # layer 2 capped, 7 split 1:1
    (6, [1, 100], [10, 5], [1, 5]),                     # density cap 1 on layer 1
    (5, [0, 0], [3, 4], [3, 2]),                        # no signal: equal split
    (4, [0, 1], [9, 2], [2, 2]),                        # zero share gets only the overflow
    (0, [1, 2], [0, 0], [0, 0]),
])
def test_redistribute_hand_worked(total, shares, capacity, expected):
    assert redistribute(total, shares, capacity) == expected


@pytest.mark.parametrize("args, error", [
    ((11, [1, 1], [5, 5]), ValueError), ((1, [1, -1], [5, 5]), ValueError),
    ((1, [1], [5, 5]), ValueError), ((1.5, [1], [5]), TypeError), ((1, [float("nan")], [5]), ValueError),
])
def test_redistribute_rejects_bad_input(args, error):
    with pytest.raises(error):
        redistribute(*args)


# --------------------------------------------------------------------------- SNFS
class TwoLayers(nn.Module):
    """Two bias-free 4x4 layers; ``backward_with(ga, gb)`` makes dL/dW exactly ga and gb."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4, bias=False)
        self.b = nn.Linear(4, 4, bias=False)

    def backward_with(self, ga, gb):
        ((self.a.weight * ga).sum() + (self.b.weight * gb).sum()).backward()


def _snfs_two_layers(n_a, n_b, share_b, alpha=0.25):
    model = TwoLayers()
    masks = {"a.weight": torch.arange(16).reshape(4, 4) < n_a, "b.weight": torch.arange(16).reshape(4, 4) < n_b}
    apply_masks(model, masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    snfs = SNFS(model, opt, UpdateSchedule(alpha=alpha, **NEAR))
    model.backward_with(torch.ones(4, 4), torch.full((4, 4), float(share_b)))
    opt.step()
    return model, snfs, snfs.step(1)


def test_snfs_moves_the_regrowth_to_the_layer_of_larger_mean_momentum():
    model, _, update = _snfs_two_layers(8, 8, 3.0)
    assert (update["a.weight"].n_drop, update["b.weight"].n_drop) == (2, 2)
    assert (update["a.weight"].n_grow, update["b.weight"].n_grow) == (1, 3)   # 4 split 1:3
    counts = {n: int(m.sum()) for n, m in current_masks(model).items()}
    assert counts == {"a.weight": 7, "b.weight": 9}
    assert update.nnz_before == update.nnz_after == 16


def test_snfs_caps_a_layer_at_density_one_and_keeps_the_total():
    model, _, update = _snfs_two_layers(8, 15, 100.0)
    assert (update["a.weight"].n_drop, update["b.weight"].n_drop) == (2, 4)
    counts = {n: int(m.sum()) for n, m in current_masks(model).items()}
    assert counts == {"a.weight": 7, "b.weight": 16}


def test_snfs_momentum_is_the_average_of_dense_gradients():
    holder = Holder(torch.ones(3, 4))
    apply_masks(holder, {"lin.weight": torch.eye(3, 4, dtype=torch.bool)})
    opt = torch.optim.SGD(holder.parameters(), lr=0.0)
    snfs = SNFS(holder, opt, UpdateSchedule(t_end=100, delta_t=50), momentum=0.5)
    g1, g2 = torch.randn(3, 4), torch.randn(3, 4)
    for step, g in enumerate((g1, g2)):
        opt.zero_grad()
        holder.backward_with(g)
        snfs.step(step)
    torch.testing.assert_close(snfs.momenta["lin.weight"], g2 + 0.5 * g1)


def test_snfs_keeps_the_global_count_through_training():
    model = masked_mlp(density=0.2)
    total = sum(int(m.sum()) for m in current_masks(model).values())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    snfs = SNFS(model, opt, UpdateSchedule(t_end=30, delta_t=4, alpha=0.5))
    changed = False
    for _, _, update, masks in train_with_updates(model, opt, snfs, 32):
        assert sum(int(m.sum()) for m in masks.values()) == total
        changed |= update is not None and any(l.nnz_after != l.nnz_before for l in update.layers)
        for name, mask in masks.items():
            original = model.get_submodule(name[:3]).parametrizations.weight.original
            assert bool((opt.state[original]["momentum_buffer"][~mask] == 0).all())
    assert changed                                                     # layers' counts did move


# --------------------------------------------------------------------------- constant fan-in
def test_constant_fan_in_mask_keeps_the_same_count_in_every_row():
    mask = constant_fan_in_mask((6, 2, 5), 0.3, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (6, 2, 5) and fan_in(mask).tolist() == [3] * 6
    again = constant_fan_in_mask((6, 2, 5), sparsity=0.7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)
    with pytest.raises(ValueError, match="2 dimensions"):
        constant_fan_in_mask((6,), 0.5)


def test_topk_per_row_takes_a_different_count_per_row_ties_to_the_lower_column():
    scores = torch.tensor([[1.0, 3.0, 3.0, 0.0], [5.0, 5.0, 5.0, 5.0], [1.0, 2.0, 3.0, 4.0]])
    allowed = torch.tensor([[True, True, True, True], [False, True, True, True], [True, True, False, False]])
    got = topk_per_row(scores, torch.tensor([2, 2, 3]), allowed)
    assert got.tolist() == [[False, True, True, False], [False, True, True, False], [True, True, False, False]]


def test_ablation_rule_hand_worked():
    mask = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1]], dtype=torch.bool)
    w = torch.tensor([[0.9, 0.8, 0, 0], [0, 0.7, 0.6, 0], [0.01, 0, 0, 0.02]])
    g = torch.zeros(3, 4)
    g[0, 2] = 1.0
    # keep 4 of 6 by |w|: rows 0, 1 -> 2 each; grow 2 by |g|: (0, 2) then (0, 0) by index
    ablate = ablated_neurons(w, g, mask, 4, 2, gamma_sal=0.5, budget=6)   # threshold max(1, 1) = 1
    assert ablate.tolist() == [False, False, True]
    assert ablated_neurons(w, g, mask, 4, 2, gamma_sal=0.0, budget=6).tolist() == [False] * 3
    # budget 12 of 12 needs every row dense: nothing may be ablated
    assert not ablated_neurons(w, g, mask, 4, 2, gamma_sal=1.0, budget=12).any()
    # threshold k = 9 // 3 = 3 is above every count (2, 1, 0): lowered to the count of the
    # second row, since budget // 8 + 1 = 2 rows must stay to hold the budget at density <= 1
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[:, :3] = True
    w = torch.zeros(3, 8)
    w[:, :3] = torch.tensor([[0.9, 0.8, 0.01], [0.7, 0.02, 0.03], [0.04, 0.05, 0.06]])
    ablate = ablated_neurons(w, torch.zeros(3, 8), mask, 3, 0, gamma_sal=1.0, budget=9)
    assert ablate.tolist() == [False, False, True]


def _srigl_layer(gamma_sal=0.3, no_ablation=()):
    w = torch.zeros(4, 6)
    mask = torch.zeros(4, 6, dtype=torch.bool)
    for r in range(4):
        mask[r, r:r + 3] = True
    w[mask] = torch.tensor([1.0, 2.0, 3.0, 1.5, 2.5, 3.5, 1.2, 2.2, 3.2, 0.01, 0.02, 0.03])
    holder = Holder(w)
    apply_masks(holder, {"lin.weight": mask})
    opt = torch.optim.SGD(holder.parameters(), lr=0.0)
    srigl = SRigL(holder, opt, UpdateSchedule(alpha=0.25, **NEAR), gamma_sal=gamma_sal,
                  no_ablation=no_ablation)
    g = torch.zeros(4, 6)
    g[0, 5], g[1, 0], g[2, 0], g[3, 0] = 0.9, 0.8, 0.7, 0.001
    holder.backward_with(g)
    opt.step()
    return holder, srigl, srigl.step(1), mask


def test_srigl_ablates_the_neuron_without_salient_weights_and_widens_the_others():
    holder, srigl, update, _ = _srigl_layer()
    # nnz 12, drop 3, keep 9 = all of rows 0-2; salient grads on rows 0-2: row 3 has none
    assert srigl.ablated["lin.weight"].tolist() == [False, False, False, True]
    mask = current_masks(holder)["lin.weight"]
    assert fan_in(mask).tolist() == [4, 4, 4, 0]                      # budget 12 over 3 rows
    assert bool(mask[0, 5]) and bool(mask[1, 0]) and bool(mask[2, 0])  # the largest |g| of each row
    assert update["lin.weight"].active_rows == 3 and update["lin.weight"].nnz_after == 12
    assert bool((holder.lin.weight[3] == 0).all())


def test_srigl_without_ablation_keeps_every_row_at_the_same_fan_in():
    for kwargs in (dict(gamma_sal=0.0), dict(no_ablation=("lin.weight",))):
        holder, srigl, update, start = _srigl_layer(**kwargs)
        mask = current_masks(holder)["lin.weight"]
        assert fan_in(mask).tolist() == [3, 3, 3, 3] and not srigl.ablated["lin.weight"].any()
        assert not torch.equal(mask, start) and update["lin.weight"].nnz_after == 12


def test_srigl_keeps_fan_in_constant_in_training_and_the_layer_condenses():
    model = masked_mlp(density=0.25, constant_fan_in=True, sizes=(8, 24, 16, 4))
    budgets = {n: int(m.sum()) for n, m in current_masks(model).items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    srigl = SRigL(model, opt, UpdateSchedule(t_end=40, delta_t=4, alpha=0.5), gamma_sal=0.9)
    assert srigl.budgets == budgets and srigl.no_ablation == ("fc3.weight",)
    for *_, masks in train_with_updates(model, opt, srigl, 44):
        for name, mask in masks.items():
            rows = fan_in(mask)
            active = rows[rows > 0]
            assert int(active.min()) == int(active.max()) == min(mask.shape[1], budgets[name] // len(active))
            assert int(mask.sum()) <= budgets[name]
    assert len(srigl.history) == 9 and srigl.history[-1]["fc3.weight"].active_rows == 4
    x = batches()(0)[0]
    mask = current_masks(model)["fc2.weight"]
    keep = fan_in(mask) > 0
    layer = CondensedLinear.from_masked(model.fc2.weight.detach()[keep], mask[keep], model.fc2.bias.detach()[keep])
    hidden = model.act1(model.fc1(x))
    torch.testing.assert_close(layer(hidden), model.fc2(hidden)[:, keep])


def test_srigl_rejects_masks_without_constant_fan_in_and_bad_arguments():
    model = masked_mlp()                                             # random, not constant fan-in
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="constant, non-zero fan-in"):
        SRigL(model, opt, UpdateSchedule(t_end=10))
    model = masked_mlp(constant_fan_in=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="gamma_sal"):
        SRigL(model, opt, UpdateSchedule(t_end=10), gamma_sal=1.5)
    with pytest.raises(ValueError, match="no_ablation"):
        SRigL(model, opt, UpdateSchedule(t_end=10), no_ablation=["fc9.weight"])


# --------------------------------------------------------------------------- ERK budgets
def test_erk_budgets_are_kept_exactly_through_rigl_training():
    g = torch.Generator().manual_seed(3)
    model = MLP([8, 48, 32, 4], generator=g)
    shapes = layer_shapes(model)
    densities = erdos_renyi_densities(shapes, sparsity=0.8)
    apply_masks(model, {n: random_mask(s, densities[n], generator=g) for n, s in shapes.items()})
    expected = {n: keep_count(s.numel(), densities[n]) for n, s in shapes.items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rigl = RigL(model, opt, UpdateSchedule(t_end=30, delta_t=5))
    seen = []

    def count(i, m):
        seen.append({n: int(mask.sum()) for n, mask in current_masks(m).items()})

    fit(model, batches(), steps=32, optimizer=opt, loss_fn=classification_loss,
        callbacks=[rigl, count], progress=False)
    assert len(rigl.history) == 5 and all(s == expected for s in seen)
    assert densities["fc3.weight"] > densities["fc1.weight"] > densities["fc2.weight"]
