"""dst.experiments: one training run (pairing, determinism, counts kept, ever-active
bookkeeping), the Sparse Wide transformation at equal FLOPs, weight multiply-adds, bad input."""
import math

import pytest
import torch

from sparsity_core.dst.experiments import METHODS, RunConfig, paired_difference, sparse_wide, train_mlp, weight_macs
from sparsity_core.dst import fan_in
from sparsity_core.models import CNN1d, MLP

pytestmark = pytest.mark.usefixtures("one_thread")

SIZES = (8, 16, 12, 4)
NAMES = ("fc1.weight", "fc2.weight", "fc3.weight")


def _data(seed=0, n=160):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, SIZES[0], generator=g)
    y = (x[:, :4].argmax(1)).long()                 # learnable labels
    return x[:120], y[:120], x[120:], y[120:]


def _config(method, density=0.3, **kw):
    densities = None if method == "dense" else {n: density for n in NAMES}
    base = dict(steps=40, seed=3, batch_size=16, delta_t=5)
    return RunConfig(SIZES, method, densities, **(base | kw))


@pytest.fixture(scope="module")
def runs():
    return {m: train_mlp(*_data(), _config(m)) for m in METHODS}


def test_every_method_trains_and_keeps_its_budget(runs):
    for method, run in runs.items():
        assert 0.0 <= run.accuracy <= 1.0 and run.seconds > 0
        if method == "dense":
            assert run.nnz == 8 * 16 + 16 * 12 + 12 * 4 and run.ever_active_fraction == 1.0
            assert run.masks_final == {} and run.updates == ()
            continue
        init = {n: int(m.sum()) for n, m in run.masks_init.items()}
        if method != "srigl":       # SRigL rounds per row: round(0.3 * D_in) in each
            assert init == {n: round(0.3 * math.prod(run.masks_init[n].shape)) for n in NAMES}
        if method == "snfs":        # sparse momentum moves connections between layers
            assert run.nnz == sum(init.values())
        elif method != "srigl":     # SRigL's ablation may lower a layer's count
            assert {n: int(m.sum()) for n, m in run.masks_final.items()} == init


def test_runs_with_one_seed_are_paired(runs):
    # same initial masks for static / SET / RigL / SNFS; SRigL's have a constant fan-in
    for method in ("set", "rigl", "snfs"):
        for n in NAMES:
            assert torch.equal(runs[method].masks_init[n], runs["static"].masks_init[n])
    for n in NAMES:
        fans = fan_in(runs["srigl"].masks_init[n])
        assert int(fans.min()) == int(fans.max())


def test_static_masks_never_change_and_updaters_explore(runs):
    static = runs["static"]
    assert all(torch.equal(static.masks_init[n], static.masks_final[n]) for n in NAMES)
    assert static.ever_active_curve == ((-1, pytest.approx(0.3, abs=0.01)),)
    for method in ("set", "rigl", "snfs"):
        run = runs[method]
        steps = [s for s, _ in run.ever_active_curve]
        assert steps == [-1] + [u.step for u in run.updates]     # one point per update
        fractions = [f for _, f in run.ever_active_curve]
        assert fractions == sorted(fractions) and fractions[-1] > fractions[0]
        assert run.ever_active_fraction == pytest.approx(fractions[-1])
        for n in NAMES:                                           # the union covers every mask held
            assert bool((run.ever_active[n] >= run.masks_final[n]).all())
            assert bool((run.ever_active[n] >= run.masks_init[n]).all())


def test_updates_stop_at_t_end():
    config = _config("rigl", steps=40, delta_t=5, t_end_fraction=0.5)
    run = train_mlp(*_data(), config)
    assert config.t_end == 20 and [u.step for u in run.updates] == [5, 10, 15]


def test_a_run_is_deterministic():
    a = train_mlp(*_data(), _config("set"))
    b = train_mlp(*_data(), _config("set"))
    assert a.accuracy == b.accuracy and a.ever_active_curve == b.ever_active_curve
    assert all(torch.equal(a.masks_final[n], b.masks_final[n]) for n in NAMES)


@pytest.mark.parametrize("sizes, s, wide", [
    ((784, 64, 64, 10), 0.75, (784, 128, 128, 10)),
    ((784, 64, 64, 10), 0.9, (784, 202, 202, 10)),
    ((40, 100, 10), 0.0, (40, 100, 10)),
])
def test_sparse_wide_keeps_every_layers_count(sizes, s, wide):
    got, densities = sparse_wide(sizes, s)
    assert got == wide
    for i in range(1, len(sizes)):
        dense_count = sizes[i - 1] * sizes[i]
        assert round(densities[f"fc{i}.weight"] * wide[i - 1] * wide[i]) == dense_count
    if len(sizes) == 4:   # a hidden-to-hidden layer keeps about 1 - s
        assert densities["fc2.weight"] == pytest.approx(1 - s, rel=0.02)


def test_weight_macs_counts_output_positions():
    assert weight_macs(MLP([8, 16, 4]), torch.zeros(1, 8)) == {"fc1.weight": 128, "fc2.weight": 64}
    cnn = CNN1d((4, 6), kernel_size=3, length=20)
    macs = weight_macs(cnn, torch.zeros(1, 20))
    # conv1: 4*1*3 weights at 10 positions; conv2: 6*4*3 at 5; head 6*5 -> 10 once
    assert macs == {"features.conv1.weight": 120, "features.conv2.weight": 360, "head.weight": 300}


@pytest.mark.parametrize("kw, error", [
    (dict(method="pruned"), ValueError),
    (dict(method="dense", densities={n: 0.5 for n in NAMES}), ValueError),
    (dict(method="rigl", densities=None), ValueError),
    (dict(densities={"fc1.weight": 0.5}), ValueError),
    (dict(densities={n: 0.0 for n in NAMES}), ValueError),
    (dict(steps=0), ValueError),
    (dict(steps=1.5), TypeError),
    (dict(t_end_fraction=0.0), ValueError),
    (dict(momentum=1.0), ValueError),
    (dict(sparse_init=1), TypeError),
])
def test_bad_config(kw, error):
    base = dict(sizes=SIZES, method="rigl", densities={n: 0.5 for n in NAMES}, steps=10)
    with pytest.raises(error):
        RunConfig(**(base | kw))


def test_bad_input():
    with pytest.raises(ValueError):
        sparse_wide((8, 4), 0.5)
    with pytest.raises(ValueError):
        sparse_wide((8, 16, 4), 1.0)
    with pytest.raises(ValueError):
        weight_macs(MLP([8, 4]), torch.zeros(2, 8))
    x, y, xt, yt = _data()
    with pytest.raises(ValueError):
        train_mlp(x, y[:-1], xt, yt, _config("static"))


def test_paired_difference_is_the_t_interval_of_the_per_seed_differences():
    d = paired_difference([0.97, 0.96, 0.98], [0.95, 0.955, 0.96])
    assert d.per_seed == pytest.approx((2.0, 0.5, 2.0))
    assert d.mean == pytest.approx(1.5)
    # sd of (2, 0.5, 2) = sqrt(0.75); t(0.975, 2) = 4.302653
    half = 4.302653 * math.sqrt(0.75) / math.sqrt(3)
    assert (d.low, d.high) == pytest.approx((1.5 - half, 1.5 + half), rel=1e-6)
    assert str(d) == f"+1.50 pp [{1.5 - half:+.2f}, {1.5 + half:+.2f}]"
    one = paired_difference([0.5], [0.25])
    assert one.mean == 25.0 and math.isnan(one.low) and math.isnan(one.high)
    with pytest.raises(ValueError, match="one accuracy per seed"):
        paired_difference([0.5, 0.6], [0.5])
    with pytest.raises(ValueError, match="one accuracy per seed"):
        paired_difference([], [])
