"""The MoE FFN in TinyGPT's FFN slot, its config, and sparse upcycling."""
import pytest
import torch

from sparsity_core.models import FeedForward, TinyGPT, TinyGPTConfig
from sparsity_core.moe import (SHAZEER_AUX_WEIGHTS, SWITCH_ALPHA, ExpertChoiceRouter, Experts, HashRouter, MoEConfig,
                               MoEFFN, NoisyTopKRouter, SwitchRouter, TopKRouter, expert_counts, importance_loss, moe_ffn,
                               upcycle, upcycle_tinygpt)

pytestmark = pytest.mark.usefixtures("one_thread")
CFG = TinyGPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)


def _idx(B=2, T=6, seed=0):
    return torch.randint(0, CFG.vocab_size, (B, T), generator=torch.Generator().manual_seed(seed))


def test_moe_ffn_runs_in_tinygpt_and_reports_weighted_aux_losses():
    config = MoEConfig(4, k=2, aux_weights=SHAZEER_AUX_WEIGHTS)
    model = TinyGPT(CFG, ffn=moe_ffn(config, generator=torch.Generator().manual_seed(0)),
                    generator=torch.Generator().manual_seed(0))
    assert all(isinstance(b.mlp, MoEFFN) for b in model.blocks)
    assert torch.count_nonzero(model.blocks[0].mlp.router.w_gate) == 0   # TinyGPT's init left it at 0
    out = model(_idx(), targets=_idx(seed=1))
    assert set(out.aux) == {"importance_loss", "load_loss"}
    # the reported value is w * loss summed over layers; recompute it from each layer's routing
    x = torch.randn(3, 4, CFG.n_embd)
    layer = model.blocks[0].mlp
    res = layer(x, generator=torch.Generator().manual_seed(0))
    expected = 0.1 * importance_loss(layer.route(x, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(res.aux["importance_loss"], expected)
    (out.loss + sum(out.aux.values())).backward()
    router = model.blocks[1].mlp.router
    assert router.w_gate.grad.abs().sum() > 0 and router.w_noise.grad.abs().sum() > 0
    assert model.blocks[1].mlp.experts.w1.grad.abs().sum() > 0


def test_moe_ffn_factory_can_replace_only_some_layers():
    model = TinyGPT(CFG, ffn=moe_ffn(MoEConfig(2, router="topk"), layers=[1]))
    assert isinstance(model.blocks[0].mlp, FeedForward) and isinstance(model.blocks[1].mlp, MoEFFN)
    assert model.blocks[1].mlp.experts.d_hidden == CFG.d_ff
    assert model(_idx()).aux == {}


def _collapsed_switch(E=4, cf=1.0, impl="grouped"):
    router = SwitchRouter(CFG.n_embd, E, capacity_factor=cf)
    with torch.no_grad():
        router.w_gate.zero_()
        router.w_gate[:, 0] = 1e3
    experts = Experts(E, CFG.n_embd, 6, generator=torch.Generator().manual_seed(0))
    return MoEFFN(router, experts, impl=impl, aux_weights={"switch_loss": SWITCH_ALPHA})


@pytest.mark.parametrize("impl", ["loop", "grouped", "padded"])
def test_dropped_tokens_give_zero_output_and_the_switch_loss_is_alpha_E_at_collapse(impl):
    layer = _collapsed_switch(impl=impl)
    x = torch.ones(2, 4, CFG.n_embd)                 # 8 tokens, capacity 2, all on expert 0
    out = layer(x)
    y = out.out.reshape(8, -1)
    assert (y[:2] != 0).any(dim=1).all() and (y[2:] == 0).all()
    assert out.aux["switch_loss"].item() == pytest.approx(SWITCH_ALPHA * 4, rel=1e-6)
    torch.testing.assert_close(out.out, _collapsed_switch(impl="loop")(x).out)


def test_switch_loss_is_alpha_for_uniform_routing():
    E = 4
    router = SwitchRouter(CFG.n_embd, E, capacity_factor=None)
    layer = MoEFFN(router, Experts(E, CFG.n_embd, 6), aux_weights={"switch_loss": SWITCH_ALPHA})
    with torch.no_grad():
        router.w_gate.zero_()
        router.w_gate[:E].copy_(torch.eye(E) * 1e-6)  # token i (x = e_{i mod E}) picks expert i mod E,
                                                      # while p stays uniform up to 1e-6
    x = torch.eye(CFG.n_embd)[torch.arange(8) % E]
    assert expert_counts(layer.route(x)).tolist() == [2] * E
    assert layer(x).aux["switch_loss"].item() == pytest.approx(SWITCH_ALPHA, rel=1e-5)


def test_expert_choice_layer_gives_each_expert_c_tokens():
    layer = MoEFFN.from_config(MoEConfig(4, router="expert_choice", capacity_factor=1.0), CFG.n_embd, 6)
    x = torch.randn(2, 6, CFG.n_embd)
    assert isinstance(layer.router, ExpertChoiceRouter)
    assert expert_counts(layer.route(x)).tolist() == [3] * 4
    assert layer(x).out.shape == x.shape


def test_hash_router_in_the_layer_reads_token_ids():
    router = HashRouter.random(CFG.vocab_size, 3, torch.Generator().manual_seed(0))
    layer = MoEFFN(router, Experts(3, CFG.n_embd, 5), impl="padded")
    ids = _idx()
    x = torch.randn(*ids.shape, CFG.n_embd)
    out = layer(x, token_ids=ids)
    ref = MoEFFN(router, layer.experts, impl="loop")(x, token_ids=ids)
    torch.testing.assert_close(out.out, ref.out)
    with pytest.raises(ValueError, match="needs token_ids"):
        layer(x)
    with pytest.raises(ValueError, match="token_ids must have shape"):
        layer(x, token_ids=ids[:, :3])


def _ffn(bias, seed=0):
    cfg = TinyGPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=6, bias=bias)
    ffn = FeedForward(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ffn.parameters():
            p.normal_(generator=g)
    return ffn


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("make_router", [
    lambda: NoisyTopKRouter(6, 4, k=2),
    lambda: TopKRouter(6, 4, k=2, renormalize=True, generator=torch.Generator().manual_seed(1)),
    lambda: TopKRouter(6, 3, k=1, renormalize=True),
])
@pytest.mark.parametrize("impl", ["grouped", "padded", "loop"])
def test_upcycled_moe_equals_the_dense_ffn_at_surgery(bias, make_router, impl):
    ffn = _ffn(bias)
    moe = upcycle(ffn, make_router(), impl=impl)
    moe.train()                                       # router noise on: the output must not care
    x = torch.randn(3, 5, 6)
    torch.testing.assert_close(moe(x, generator=torch.Generator().manual_seed(0)).out, ffn(x))
    assert torch.equal(moe.experts.w1[2], ffn.c_fc.weight.t())    # identical copies
    assert isinstance(ffn.c_fc, torch.nn.Linear)                   # the dense FFN is untouched


def test_a_one_expert_moe_is_the_dense_ffn_in_output_and_gradients():
    ffn = _ffn(True).double()
    moe = upcycle(ffn, NoisyTopKRouter(6, 1, k=1).double())
    x = torch.randn(4, 3, 6, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = moe(x).out, ffn(x_ref)
    torch.testing.assert_close(y, y_ref)
    dy = torch.randn_like(y)
    y.backward(dy)
    y_ref.backward(dy)
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(moe.experts.w1.grad[0], ffn.c_fc.weight.grad.t())
    torch.testing.assert_close(moe.experts.w2.grad[0], ffn.c_proj.weight.grad.t())
    torch.testing.assert_close(moe.experts.b1.grad[0], ffn.c_fc.bias.grad)
    torch.testing.assert_close(moe.experts.b2.grad[0], ffn.c_proj.bias.grad)


def test_upcycled_tinygpt_has_the_dense_logits_and_the_dense_model_is_unchanged():
    dense = TinyGPT(CFG, generator=torch.Generator().manual_seed(0)).eval()
    moe = upcycle_tinygpt(dense, lambda i: NoisyTopKRouter(CFG.n_embd, 4, k=2),
                          aux_weights=SHAZEER_AUX_WEIGHTS).eval()
    assert all(isinstance(b.mlp, FeedForward) for b in dense.blocks)
    assert all(isinstance(b.mlp, MoEFFN) for b in moe.blocks)
    idx = _idx()
    torch.testing.assert_close(moe(idx).logits, dense(idx).logits)
    assert set(moe(idx).aux) == {"importance_loss", "load_loss"}
    one = upcycle_tinygpt(dense, lambda i: TopKRouter(CFG.n_embd, 2, k=2), layers=[0])
    assert isinstance(one.blocks[0].mlp, MoEFFN) and isinstance(one.blocks[1].mlp, FeedForward)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(num_experts=4, k=5), ValueError, "k"),
    (dict(num_experts=0), ValueError, "num_experts"),
    (dict(num_experts=4, router="topk", capacity_factor=0.0), ValueError, "capacity_factor"),
    (dict(num_experts=4, router="expert_choice", capacity_factor=-2.0), ValueError, "capacity_factor"),
    (dict(num_experts=4, capacity_factor=1.0), ValueError, "noisy_topk"),
    (dict(num_experts=4, router="hash"), ValueError, "router"),
    (dict(num_experts=4, impl="fused"), ValueError, "impl"),
    (dict(num_experts=4, aux_weights={"balance": 1.0}), ValueError, "unknown aux"),
    (dict(num_experts=4, aux_weights={"z_loss": -1.0}), ValueError, "z_loss"),
    (dict(num_experts=4, aux_weights=[("z_loss", 1.0)]), TypeError, "aux_weights"),
    (dict(num_experts=4, d_hidden=0), ValueError, "d_hidden"),
    (dict(num_experts=4, renormalize="yes"), TypeError, "renormalize"),
])
def test_moe_config_rejects_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        MoEConfig(**kwargs)


def test_moe_ffn_rejects_mismatched_parts_and_inputs():
    with pytest.raises(ValueError, match="experts"):
        MoEFFN(NoisyTopKRouter(8, 4, 1), Experts(3, 8, 4))
    with pytest.raises(ValueError, match="d_model"):
        MoEFFN(NoisyTopKRouter(8, 4, 1), Experts(4, 6, 4))
    with pytest.raises(TypeError, match="router"):
        MoEFFN(torch.nn.Linear(8, 4), Experts(4, 8, 4))
    layer = MoEFFN(NoisyTopKRouter(8, 4, 1), Experts(4, 8, 4))
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 8\)"):
        layer(torch.zeros(2, 3, 7))
    with pytest.raises(TypeError, match="c_fc"):
        upcycle(torch.nn.Linear(4, 4), NoisyTopKRouter(4, 2, 1))
    with pytest.raises(TypeError, match="TinyGPT"):
        upcycle_tinygpt(torch.nn.Linear(4, 4), lambda i: None)
    with pytest.raises(ValueError, match="layer"):
        upcycle_tinygpt(TinyGPT(CFG), lambda i: NoisyTopKRouter(8, 2, 1), layers=[2])
