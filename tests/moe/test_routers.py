"""Routers: noisy top-k, softmax top-k / Switch with capacity, expert choice."""
import math

import pytest
import torch

from sparsity_core.moe import (ExpertChoiceRouter, NoisyTopKRouter, SwitchRouter, TopKRouter, expert_capacity,
                               expert_counts, unrouted_fraction)

pytestmark = pytest.mark.usefixtures("one_thread")
C, E = 5, 4


def _x(n, seed=0, c=C):
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed))


def test_noisy_topk_starts_at_zero_and_its_weights_sum_to_one():
    r = NoisyTopKRouter(C, E, k=2)
    assert torch.count_nonzero(r.w_gate) == 0 and torch.count_nonzero(r.w_noise) == 0
    with torch.no_grad():
        r.w_gate.normal_(generator=torch.Generator().manual_seed(1))
    out = r(_x(9), generator=torch.Generator().manual_seed(2))
    assert out.experts.shape == (9, 2) and out.kept.all() and not out.dropped.any()
    torch.testing.assert_close(out.weights.sum(1), torch.ones(9))
    # the weights are the softmax over the two kept noisy logits
    top = out.noisy_logits.gather(1, out.experts)
    torch.testing.assert_close(out.weights, top.softmax(1))
    # zero W_noise: the noise scale is Softplus(0) + floor
    torch.testing.assert_close(out.noise_std, torch.full((9, E), math.log(2) + 0.01))
    assert expert_counts(out).sum() == 9 * 2


def test_noisy_topk_draws_noise_only_in_training_from_the_generator():
    r = NoisyTopKRouter(C, E, k=1)
    x = _x(16)
    a = r(x, generator=torch.Generator().manual_seed(3))
    b = r(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.experts, b.experts) and torch.equal(a.noisy_logits, b.noisy_logits)
    assert not torch.equal(a.noisy_logits, a.logits)
    r.eval()
    c = r(x)
    assert torch.equal(c.noisy_logits, c.logits)


def test_noisy_topk_without_noise_has_no_noise_fields():
    r = NoisyTopKRouter(C, E, k=2, noisy=False)
    out = r(_x(3))
    assert r.w_noise is None and out.noisy_logits is None and out.noise_std is None


def test_topk_router_weights_are_probabilities_or_renormalised():
    x = _x(12)
    g = torch.Generator().manual_seed(0)
    plain = TopKRouter(C, E, k=2, generator=g)
    out = plain(x)
    p = (x @ plain.w_gate).softmax(1)
    torch.testing.assert_close(out.weights, p.gather(1, out.experts))
    assert torch.equal(out.experts, p.topk(2, dim=1).indices)
    renorm = TopKRouter(C, E, k=2, renormalize=True)
    renorm.load_state_dict(plain.state_dict())
    torch.testing.assert_close(renorm(x).weights.sum(1), torch.ones(12))


def test_switch_initialisation_is_a_truncated_normal_of_the_paper_scale():
    r = SwitchRouter(400, 50, generator=torch.Generator().manual_seed(0))
    std = math.sqrt(0.1 / 400)
    assert r.w_gate.abs().max() <= 2 * std
    assert 0.7 * std < r.w_gate.std() < std       # truncation at 2 std shrinks the std to 0.88


def test_switch_capacity_is_respected_and_overflow_is_dropped_in_token_order():
    N, cf = 10, 1.0
    r = SwitchRouter(C, E, capacity_factor=cf)
    with torch.no_grad():                           # everyone prefers expert 2
        r.w_gate.zero_()
        r.w_gate[0, 2] = 10.0
    x = _x(N).abs() + 0.1                           # positive first feature
    out = r(x)
    cap = expert_capacity(N, E, cf)
    assert cap == 3 and r.capacity(N) == 3
    assert (out.experts[:, 0] == 2).all()
    assert out.kept[:, 0].tolist() == [True] * cap + [False] * (N - cap)
    assert out.dropped[:, 0].tolist() == [False] * cap + [True] * (N - cap)
    p2 = out.probs()[:, 2]
    assert (out.weights[~out.kept] == 0).all() and torch.equal(out.weights[out.kept], p2[:cap])
    assert unrouted_fraction(out) == 0.7


@pytest.mark.parametrize("seed", range(3))
def test_no_expert_exceeds_its_capacity(seed):
    for k in (1, 2):
        r = TopKRouter(C, E, k=k, capacity_factor=0.75, generator=torch.Generator().manual_seed(seed))
        out = r(_x(23, seed))
        assert expert_counts(out).max() <= r.capacity(23)
        assert int(out.kept.sum() + out.dropped.sum()) == 23 * k


@pytest.mark.parametrize("N, cf", [(8, 2.0), (7, 1.0), (5, 0.5), (3, 8.0)])
def test_expert_choice_gives_every_expert_exactly_c_tokens(N, cf):
    r = ExpertChoiceRouter(C, E, capacity_factor=cf, generator=torch.Generator().manual_seed(0))
    out = r(_x(N))
    c = min(N, math.ceil(cf * N / E))
    assert r.capacity(N) == c
    assert expert_counts(out).tolist() == [c] * E
    assert out.experts.shape == (N, E) and (out.experts == torch.arange(E)).all()
    # each expert picked its c highest-scoring tokens, weighted by the score
    S = out.logits.softmax(1)
    for e in range(E):
        picked = out.kept[:, e]
        assert S[picked, e].min() >= S[~picked, e].max() if (~picked).any() else True
    torch.testing.assert_close(out.weights, torch.where(out.kept, S, torch.zeros_like(S)))


def test_expert_choice_can_leave_tokens_unrouted():
    r = ExpertChoiceRouter(C, 2, capacity_factor=0.5)
    with torch.no_grad():
        r.w_gate.zero_()                            # all scores tie: both experts pick token 0
    out = r(_x(4))
    assert out.kept.tolist() == [[True, True], [False, False], [False, False], [False, False]]
    assert unrouted_fraction(out) == 0.75


@pytest.mark.parametrize("make, error, match", [
    (lambda: NoisyTopKRouter(C, E, k=E + 1), ValueError, "k"),
    (lambda: NoisyTopKRouter(C, E, k=0), ValueError, "k"),
    (lambda: TopKRouter(C, E, k=5), ValueError, "k"),
    (lambda: TopKRouter(C, E, capacity_factor=0.0), ValueError, "capacity_factor"),
    (lambda: SwitchRouter(C, E, capacity_factor=-1), ValueError, "capacity_factor"),
    (lambda: ExpertChoiceRouter(C, E, capacity_factor=0), ValueError, "capacity_factor"),
    (lambda: NoisyTopKRouter(C, E, k=1.5), TypeError, "k"),
    (lambda: NoisyTopKRouter(C, 0, k=1), ValueError, "num_experts"),
    (lambda: TopKRouter(C, E, renormalize=1), TypeError, "renormalize"),
])
def test_routers_reject_bad_settings(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("router", [NoisyTopKRouter(C, E, 2), SwitchRouter(C, E), ExpertChoiceRouter(C, E)])
def test_routers_reject_bad_inputs(router):
    with pytest.raises(ValueError, match="x must have shape"):
        router(torch.zeros(3, C + 1))
    with pytest.raises(ValueError, match="x must have shape"):
        router(torch.zeros(2, 3, C))
    with pytest.raises(TypeError, match="floating"):
        router(torch.zeros(3, C, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        router([[0.0] * C])
