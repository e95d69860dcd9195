"""Balancing losses on cases with exact answers, and the smooth load against sampling."""
import math

import pytest
import torch

from sparsity_core.moe import (NoisyTopKRouter, Routing, SwitchRouter, cv_squared, importance, importance_loss,
                               load_loss, load_probabilities, smooth_load, switch_loss, z_loss)

pytestmark = pytest.mark.usefixtures("one_thread")
F64 = torch.float64


def _routing(experts, E, logits=None, weights=None, **kw):
    experts = torch.as_tensor(experts).reshape(len(experts), -1)
    kept = torch.ones_like(experts, dtype=torch.bool)
    w = torch.ones(experts.shape, dtype=F64) if weights is None else weights
    return Routing(experts=experts, weights=w, kept=kept, dropped=torch.zeros_like(kept), num_experts=E,
                   logits=logits, **kw)


@pytest.mark.parametrize("E", [1, 2, 4, 8])
def test_switch_loss_is_one_when_uniform_and_E_at_collapse(E):
    N = 3 * E
    uniform = _routing(torch.arange(N) % E, E, logits=torch.zeros(N, E, dtype=F64))
    assert switch_loss(uniform).item() == pytest.approx(1.0, abs=1e-12)
    logits = torch.full((N, E), -1e3, dtype=F64)
    logits[:, 0] = 0.0                              # p = 1 on expert 0
    collapsed = _routing(torch.zeros(N, dtype=torch.long), E, logits=logits)
    assert switch_loss(collapsed).item() == pytest.approx(E, abs=1e-9)


def test_switch_loss_counts_dropped_tokens_as_the_routers_choice():
    r = SwitchRouter(3, 4, capacity_factor=0.5)
    with torch.no_grad():
        r.w_gate.zero_()
        r.w_gate[0, 1] = 1e3
    out = r(torch.ones(8, 3, dtype=torch.float32))
    assert out.dropped.any()
    assert switch_loss(out).item() == pytest.approx(4.0, rel=1e-6)   # f_1 = 1 although most are dropped


def test_switch_loss_gradient_reaches_the_router_through_P_only():
    r = SwitchRouter(3, 4, capacity_factor=None, generator=torch.Generator().manual_seed(0))
    out = r(torch.randn(6, 3, generator=torch.Generator().manual_seed(1)))
    (g,) = torch.autograd.grad(switch_loss(out), r.w_gate)
    f = torch.bincount(out.experts[:, 0], minlength=4).double() / 6
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    w = r.w_gate.detach().clone().requires_grad_()
    expected = 4 * (f.float() * (x @ w).softmax(1).mean(0)).sum()
    (g_ref,) = torch.autograd.grad(expected, w)
    torch.testing.assert_close(g, g_ref)


@pytest.mark.parametrize("E", [1, 2, 5, 8])
def test_z_loss_on_zero_logits_is_log_E_squared(E):
    r = _routing(torch.zeros(7, dtype=torch.long), E, logits=torch.zeros(7, E, dtype=F64))
    assert z_loss(r).item() == pytest.approx(math.log(E) ** 2, abs=1e-12)


def test_z_loss_is_the_mean_squared_logsumexp():
    logits = torch.tensor([[0.0, math.log(3.0)], [1.0, 1.0]], dtype=F64)
    r = _routing([0, 1], 2, logits=logits)
    expected = (math.log(4.0) ** 2 + (1 + math.log(2.0)) ** 2) / 2
    assert z_loss(r).item() == pytest.approx(expected, abs=1e-12)


def test_cv_squared_of_uniform_and_one_hot():
    assert cv_squared(torch.full((5,), 3.0, dtype=F64)).item() == 0.0
    assert cv_squared(torch.tensor([7.0], dtype=F64)).item() == 0.0
    assert cv_squared(torch.zeros(4, dtype=F64)).item() == 0.0
    # one-hot over E: var = N^2 (E - 1) / E^2, mean^2 = N^2 / E^2 -> CV^2 = E - 1
    for E in (2, 4, 8):
        assert cv_squared(torch.eye(E, dtype=F64)[0] * 11).item() == pytest.approx(E - 1, rel=1e-9)
    with pytest.raises(ValueError, match="values"):
        cv_squared(torch.zeros(2, 2))


def test_importance_loss_is_zero_when_balanced_and_E_minus_1_at_collapse():
    E = 4
    balanced = _routing(torch.arange(8) % E, E)
    assert importance(balanced).tolist() == [2.0] * E and importance_loss(balanced).item() == 0.0
    collapsed = _routing(torch.zeros(8, dtype=torch.long), E)
    assert importance_loss(collapsed).item() == pytest.approx(E - 1)


def test_load_probabilities_on_a_hand_worked_two_expert_case():
    # k = 1; clean logits (1, 0), noisy (1.3, 0.2), noise std (1, 2); expert 0 is chosen.
    # P(x, 0) = Phi((1 - 0.2) / 1): its threshold is the other noisy logit, 0.2
    # P(x, 1) = Phi((0 - 1.3) / 2): it must beat expert 0's noisy logit, 1.3
    r = _routing([0], 2, logits=torch.tensor([[1.0, 0.0]], dtype=F64),
                 noisy_logits=torch.tensor([[1.3, 0.2]], dtype=F64), noise_std=torch.tensor([[1.0, 2.0]], dtype=F64))
    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))
    torch.testing.assert_close(load_probabilities(r), torch.tensor([[phi(0.8), phi(-0.65)]], dtype=F64))


def test_load_probability_is_the_chance_to_stay_in_the_top_k_when_own_noise_is_redrawn():
    # for one token, redraw only expert i's noise many times and count how often i is in the top k
    g = torch.Generator().manual_seed(0)
    E, k, S = 6, 2, 40_000
    clean = torch.randn(1, E, generator=g, dtype=F64)
    std = torch.rand(1, E, generator=g, dtype=F64) + 0.5
    noisy = clean + torch.randn(1, E, generator=g, dtype=F64) * std
    experts = noisy.topk(k, dim=1).indices
    r = _routing(experts, E, logits=clean, noisy_logits=noisy, noise_std=std)
    P = load_probabilities(r)[0]
    for i in range(E):
        redrawn = noisy.repeat(S, 1)
        redrawn[:, i] = clean[0, i] + torch.randn(S, generator=g, dtype=F64) * std[0, i]
        in_top = (redrawn.topk(k, dim=1).indices == i).any(1).double().mean()
        assert abs(in_top.item() - P[i].item()) < 0.01          # 4 sigma of the sampling error


def test_smooth_load_with_k_equal_E_is_the_token_count_and_its_loss_is_zero():
    router = NoisyTopKRouter(3, 3, k=3)
    out = router(torch.randn(5, 3), generator=torch.Generator().manual_seed(0))
    assert smooth_load(out).tolist() == [5.0, 5.0, 5.0] and load_loss(out).item() == 0.0


def test_the_losses_train_the_noisy_router():
    # gradients reach both W_g and W_noise through the importance and load losses
    router = NoisyTopKRouter(4, 4, k=2)
    with torch.no_grad():
        router.w_gate.normal_(generator=torch.Generator().manual_seed(0))
    out = router(torch.randn(16, 4, generator=torch.Generator().manual_seed(1)),
                 generator=torch.Generator().manual_seed(2))
    g_gate, g_noise = torch.autograd.grad(importance_loss(out) + load_loss(out), (router.w_gate, router.w_noise))
    assert g_gate.abs().sum() > 0 and g_noise.abs().sum() > 0


def test_losses_that_need_logits_or_noise_say_so():
    hashed = _routing([0, 1], 2)
    with pytest.raises(ValueError, match="noisy router"):
        load_loss(hashed)
    with pytest.raises(ValueError, match="logits"):
        z_loss(hashed)
    with pytest.raises(ValueError, match="logits"):
        switch_loss(hashed)
    plain = NoisyTopKRouter(3, 4, k=1, noisy=False)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="noisy router"):
        load_loss(plain)
