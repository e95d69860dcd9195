"""The three expert implementations agree in values and gradients; one expert is the dense MLP."""
import pytest
import torch
import torch.nn.functional as F

from sparsity_core.moe import (Experts, NoisyTopKRouter, Routing, SwitchRouter, apply_capacity, grouped_experts,
                               loop_experts, padded_experts, padded_slot_count)

pytestmark = pytest.mark.usefixtures("one_thread")
F64 = torch.float64
IMPLS = {"loop": loop_experts, "grouped": grouped_experts, "padded": padded_experts}


def _case(N, C, H, E, K, *, bias=True, seed=0, starve=()):
    """Random experts, inputs, weights and indices; experts in ``starve`` receive no slot."""
    g = torch.Generator().manual_seed(seed)
    experts = Experts(E, C, H, bias=bias, generator=g).double()
    x = torch.randn(N, C, generator=g, dtype=F64, requires_grad=True)
    allowed = torch.tensor([e for e in range(E) if e not in starve])
    scores = torch.rand(N, len(allowed), generator=g)
    indices = allowed[scores.topk(K, dim=1).indices]                 # K distinct experts per token
    weights = torch.rand(N, K, generator=g, dtype=F64).requires_grad_()
    return experts, x, weights, indices


def _grads(fn, experts, x, weights, indices, kept=None, **kw):
    y = fn(experts, x, weights, indices, kept, **kw)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=y.dtype)
    params = [p for p in (experts.w1, experts.b1, experts.w2, experts.b2) if p is not None]
    return (y, *torch.autograd.grad(y, [x, weights, *params], dy))


CASES = {
    "one token": dict(N=1, C=3, H=5, E=4, K=2),
    "one expert": dict(N=6, C=4, H=3, E=1, K=1),
    "k equals E": dict(N=5, C=3, H=7, E=3, K=3),
    "starved experts": dict(N=7, C=5, H=3, E=6, K=2, starve=(1, 4)),
    "odd sizes, no bias": dict(N=11, C=7, H=9, E=5, K=2, bias=False),
    "top-1": dict(N=9, C=3, H=5, E=4, K=1),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("impl", ["grouped", "padded"])
def test_fast_implementations_equal_the_loop_in_values_and_gradients(name, impl):
    case = _case(**CASES[name])
    expected = _grads(loop_experts, *case)
    got = _grads(IMPLS[impl], *case)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("impl", ["loop", "grouped", "padded"])
def test_unkept_slots_contribute_nothing_and_get_no_gradient(impl):
    experts, x, weights, indices = _case(N=6, C=3, H=4, E=3, K=2)
    kept = torch.tensor([[True, False], [False, False], [True, True], [False, True], [True, True], [False, False]])
    y, dx, dw, *_ = _grads(IMPLS[impl], experts, x, weights, indices, kept)
    assert (y[[1, 5]] == 0).all() and (dx[[1, 5]] == 0).all()
    assert (dw[~kept] == 0).all() and (dw[kept] != 0).all()
    ref = _grads(loop_experts, experts, x, weights, indices, kept)
    for a, b in zip((y, dx, dw), ref[:3]):
        torch.testing.assert_close(a, b)


def test_padded_capacity_drops_exactly_the_slots_apply_capacity_drops():
    experts, x, weights, indices = _case(N=10, C=3, H=4, E=3, K=2, seed=1)
    kept, dropped = apply_capacity(indices, torch.ones_like(indices, dtype=torch.bool), 3, capacity=5)
    assert dropped.any()
    got = _grads(padded_experts, experts, x, weights, indices, None, capacity=5)
    expected = _grads(grouped_experts, experts, x, weights, indices, kept)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_one_expert_is_the_dense_mlp_in_output_and_gradients():
    g = torch.Generator().manual_seed(0)
    C, H, N = 5, 7, 8
    experts = Experts(1, C, H, generator=g).double()
    router = NoisyTopKRouter(C, 1, k=1).double()
    x = torch.randn(N, C, generator=g, dtype=F64, requires_grad=True)
    assert (router(x, generator=g).weights == 1).all()
    w1, b1, w2, b2 = (p.detach().clone().requires_grad_() for p in (experts.w1[0], experts.b1[0],
                                                                     experts.w2[0], experts.b2[0]))
    x_ref = x.detach().clone().requires_grad_()
    dense = F.linear(F.gelu(F.linear(x_ref, w1.t(), b1)), w2.t(), b2)
    dy = torch.randn(N, C, generator=g, dtype=F64)
    ref = torch.autograd.grad(dense, (x_ref, w1, b1, w2, b2), dy)
    for impl in ("loop", "grouped", "padded"):
        y = experts(x, router(x, generator=g), impl=impl)
        torch.testing.assert_close(y, dense)
        got = torch.autograd.grad(y, (x, experts.w1, experts.b1, experts.w2, experts.b2), dy)
        for a, b in zip(got, ref):
            torch.testing.assert_close(a.squeeze(0), b)


def test_gradients_reach_the_router_through_the_combine_weights():
    g = torch.Generator().manual_seed(3)
    experts = Experts(4, 3, 5, generator=g).double()
    router = SwitchRouter(3, 4, capacity_factor=None, generator=g).double()
    x = torch.randn(9, 3, generator=g, dtype=F64)
    grads = []
    for impl in ("loop", "grouped", "padded"):
        (gr,) = torch.autograd.grad(experts(x, router(x), impl=impl).square().sum(), router.w_gate)
        grads.append(gr)
    assert grads[0].abs().sum() > 0
    for other in grads[1:]:
        torch.testing.assert_close(other, grads[0])


def test_padded_slot_count_is_zero_for_the_grouped_layout_and_the_padding_otherwise():
    indices = torch.tensor([[0], [0], [2], [0]])
    kept = torch.ones_like(indices, dtype=torch.bool)
    r = Routing(experts=indices, weights=torch.ones(4, 1), kept=kept, dropped=torch.zeros_like(kept), num_experts=3)
    assert padded_slot_count(r, 3) == 3 * 3 - 4          # E * capacity - T
    assert padded_slot_count(r, 2) == 3 * 2 - 3          # one slot of expert 0 overflows


def test_experts_init_is_nn_linear_like_and_seeded():
    a = Experts(3, 16, 64, generator=torch.Generator().manual_seed(0))
    b = Experts(3, 16, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.w1, b.w1) and torch.equal(a.w2, b.w2)
    assert a.w1.abs().max() <= 16 ** -0.5 and a.w2.abs().max() <= 64 ** -0.5
    assert a.w1.shape == (3, 16, 64) and a.w2.shape == (3, 64, 16) and a.b1.shape == (3, 64)
    assert Experts(2, 4, 4, bias=False).b1 is None


def test_bad_inputs_raise():
    experts, x, weights, indices = _case(N=4, C=3, H=2, E=3, K=2)
    with pytest.raises(ValueError, match="x must have shape"):
        grouped_experts(experts, x[:, :2], weights, indices)
    with pytest.raises(ValueError, match="indices must lie"):
        grouped_experts(experts, x, weights, indices + 3)
    with pytest.raises(ValueError, match="weights"):
        loop_experts(experts, x, weights[:, :1], indices)
    with pytest.raises(ValueError, match="int64"):
        padded_experts(experts, x, weights, indices.int())
    with pytest.raises(ValueError, match="kept"):
        grouped_experts(experts, x, weights, indices, torch.ones(4, 2))
    with pytest.raises(ValueError, match="capacity"):
        padded_experts(experts, x, weights, indices, capacity=0)
    with pytest.raises(TypeError, match="Experts"):
        grouped_experts(torch.nn.Linear(3, 3), x, weights, indices)
    routing = NoisyTopKRouter(3, 3, 2).double()(x)
    with pytest.raises(ValueError, match="impl"):
        experts(x, routing, impl="fused")
    with pytest.raises(ValueError, match="padded"):
        experts(x, routing, impl="grouped", capacity=2)
    with pytest.raises(ValueError, match="experts"):
        experts(x, NoisyTopKRouter(3, 4, 2).double()(x))
    with pytest.raises(ValueError, match="d_hidden"):
        Experts(2, 3, 0)


def test_from_weights_copies_and_checks_shapes():
    g = torch.Generator().manual_seed(0)
    w1, w2 = torch.randn(2, 3, 4, generator=g), torch.randn(2, 4, 3, generator=g)
    state = torch.get_rng_state()
    e = Experts.from_weights(w1, None, w2, None)
    assert torch.equal(torch.get_rng_state(), state)          # the global RNG is left alone
    assert torch.equal(e.w1, w1) and torch.equal(e.w2, w2) and e.b1 is None
    w1.zero_()
    assert e.w1.abs().sum() > 0                               # a copy
    with pytest.raises(ValueError, match="w2"):
        Experts.from_weights(w1, None, w2[:, :3], None)
    with pytest.raises(ValueError, match="both biases"):
        Experts.from_weights(w1, torch.zeros(2, 4), w2, None)
