"""The MoE classifier of Chapter 5, its routing statistics and its training run."""
import math

import pytest
import torch
import torch.nn.functional as F

from sparsity_core.data.images import ImageData
from sparsity_core.moe import SHAZEER_AUX_WEIGHTS, SWITCH_AUX_WEIGHTS, MoEConfig, Routing, expert_counts
from sparsity_core.moe.classifier import MoEClassifier, concat_routings, routing_stats, train_moe_classifier

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n=96, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3 * n, d, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()                  # 4 classes, learnable
    return ImageData("toy", x[:n], y[:n], x[n:2 * n], y[n:2 * n], x[2 * n:], y[2 * n:], n_classes=4)


def test_one_expert_topk_classifier_is_the_dense_residual_mlp_in_values_and_gradients():
    model = MoEClassifier(6, 4, MoEConfig(1, router="topk"), width=8, d_hidden=16,
                          generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    e = model.moe.experts
    h = model.inp(x)
    z = model.ln(h)
    ffn = F.gelu(z @ e.w1[0] + e.b1[0]) @ e.w2[0] + e.b2[0]                 # the obvious dense twin
    expected = model.head(model.ln_f(h + ffn))
    out = model(x)
    torch.testing.assert_close(out.out, expected)
    (g_fast,) = torch.autograd.grad(out.out.square().sum(), e.w1)
    (g_slow,) = torch.autograd.grad(expected.square().sum(), e.w1)
    torch.testing.assert_close(g_fast, g_slow)
    logits, routing = model.logits_and_routing(x)
    torch.testing.assert_close(logits, expected)
    assert routing.num_tokens == 5


def test_routing_stats_on_a_hand_made_routing():
    # 4 tokens, E = 3, top-1: loads (2, 1, 0) kept, one more slot dropped on expert 0
    experts = torch.tensor([[0], [0], [1], [0]])
    weights = torch.tensor([[0.5], [1.0], [0.5], [0.0]])
    kept = torch.tensor([[True], [True], [True], [False]])
    r = Routing(experts=experts, weights=weights, kept=kept, dropped=~kept, num_experts=3)
    s = routing_stats(r)
    load = torch.tensor([2.0, 1.0, 0.0])
    assert s["cv_load"] == pytest.approx(float(load.std(unbiased=False) / load.mean()))
    assert s["max_mean_load"] == pytest.approx(2.0)
    imp = torch.tensor([1.5, 0.5, 0.0])                                     # gate mass of kept slots
    assert s["cv_importance"] == pytest.approx(float(imp.std(unbiased=False) / imp.mean()))
    assert s["dropped"] == pytest.approx(0.25) and s["unrouted"] == pytest.approx(0.25)
    with pytest.raises(TypeError):
        routing_stats("not a routing")


def test_concat_routings_is_the_routing_of_the_concatenated_tokens():
    model = MoEClassifier(6, 4, MoEConfig(4, k=2, aux_weights=SHAZEER_AUX_WEIGHTS), width=8,
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.moe.router.w_gate.normal_(generator=torch.Generator().manual_seed(2))
    model.eval()
    x = torch.randn(7, 6, generator=torch.Generator().manual_seed(1))
    whole = model.route(x)
    parts = concat_routings([model.route(x[:3]), model.route(x[3:])])
    for name in ("experts", "weights", "kept", "dropped", "logits", "noise_std"):
        torch.testing.assert_close(getattr(parts, name), getattr(whole, name))
    with pytest.raises(ValueError):
        concat_routings([])
    other = MoEClassifier(6, 4, MoEConfig(3, k=2), width=8).route(x)
    with pytest.raises(ValueError):
        concat_routings([whole, other])


def test_mix_under_the_routing_is_forward():
    model = MoEClassifier(6, 4, MoEConfig(4, k=1, router="topk", capacity_factor=1.0, impl="padded"), width=8,
                          generator=torch.Generator().manual_seed(0))
    z = torch.randn(9, 8, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(model.moe.mix(z, model.moe.route(z)), model.moe(z).out)


def test_training_run_is_seeded_and_reports_loads_that_sum_to_slots():
    data = _data()
    cfg = MoEConfig(4, k=2, router="topk", aux_weights=SWITCH_AUX_WEIGHTS)
    a = train_moe_classifier(data, cfg, seed=3, steps=12, eval_every=4, batch_size=32)
    b = train_moe_classifier(data, cfg, seed=3, steps=12, eval_every=4, batch_size=32)
    assert a.test == b.test and torch.equal(a.test_counts, b.test_counts)
    assert [s for s, _ in a.curve] == [4, 8, 12]
    assert a.curve_counts.shape == (3, 4) and (a.curve_counts.sum(1) == data.x_val.shape[0] * 2).all()
    assert not a.model.training
    assert int(a.test_counts.sum()) == data.x_test.shape[0] * 2           # loads sum to tokens x k
    assert a.test["accuracy"] > 0.25                                       # better than chance after 12 steps
    c = train_moe_classifier(data, cfg, seed=4, steps=12, eval_every=0, batch_size=32)
    assert c.curve == () and c.test != a.test and c.curve_counts.shape == (0, 4)
    assert a.steps_to(0.0) == 4 and a.steps_to(1.01) is None


def test_expert_choice_run_gives_every_expert_exactly_its_capacity_per_batch():
    data = _data()
    run = train_moe_classifier(data, MoEConfig(4, router="expert_choice", capacity_factor=1.0),
                               seed=0, steps=3, eval_every=0, batch_size=32)
    # 96 test rows = 3 batches of 32; c = ceil(1.0 * 32 / 4) = 8 per expert per batch
    assert run.test_counts.tolist() == [24, 24, 24, 24]
    assert run.test["cv_load"] == 0.0 and run.test["max_mean_load"] == 1.0


def test_switch_capacity_drops_are_reported():
    data = _data()
    run = train_moe_classifier(data, MoEConfig(4, k=1, router="topk", capacity_factor=0.5),
                               seed=0, steps=3, eval_every=0, batch_size=32)
    # capacity ceil(0.5 * 32 / 4) = 4 per expert: at most 16 of 32 slots kept per batch
    assert int(run.test_counts.sum()) <= 48
    assert run.test["dropped"] >= 0.5 and math.isclose(run.test["dropped"], 1 - int(run.test_counts.sum()) / 96)


def test_bad_input():
    data = _data()
    cfg = MoEConfig(2, router="topk")
    with pytest.raises(ValueError):
        train_moe_classifier(data, cfg, seed=0, steps=0)
    with pytest.raises(ValueError):
        train_moe_classifier(data, cfg, seed=-1, steps=1)
    images = ImageData("img", data.x_train.reshape(-1, 2, 3), data.y_train, data.x_val.reshape(-1, 2, 3),
                       data.y_val, data.x_test.reshape(-1, 2, 3), data.y_test, n_classes=4)
    with pytest.raises(ValueError, match="flat"):
        train_moe_classifier(images, cfg, seed=0, steps=1)
    model = MoEClassifier(6, 4, cfg)
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(3, 5))
    with pytest.raises(ValueError):
        MoEClassifier(0, 4, cfg)
    assert expert_counts(model.route(torch.randn(3, 6))).sum() == 3
