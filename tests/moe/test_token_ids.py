"""feed_token_ids: a TinyGPT's hash-routed FFNs route by the ids of the model's input."""
import pytest
import torch

from sparsity_core.models import FeedForward, TinyGPT, TinyGPTConfig
from sparsity_core.moe import Experts, HashRouter, MoEConfig, MoEFFN, moe_ffn
from sparsity_core.moe.token_ids import feed_token_ids, hash_routed_layers

CFG = TinyGPTConfig(vocab_size=11, block_size=8, n_layer=3, n_head=2, n_embd=8, dropout=0.0)


def _hash_model(layers=(1,), num_experts=3, seed=0):
    g = torch.Generator().manual_seed(seed)

    def ffn(config, i):
        if i not in layers:
            return FeedForward(config, i)
        router = HashRouter.random(config.vocab_size, num_experts, torch.Generator().manual_seed(seed + i))
        return MoEFFN(router, Experts(num_experts, config.n_embd, config.d_ff, generator=g))
    return TinyGPT(CFG, ffn=ffn, generator=g)


def _by_hand(model, idx):
    """The slow twin: the blocks run one by one, each hash FFN given idx explicitly."""
    x = model.wte(idx) + model.wpe(torch.arange(idx.shape[1]))
    for block in model.blocks:
        x = x + block.attn(block.ln_1(x))
        h = block.ln_2(x)
        m = block.mlp(h, token_ids=idx) if isinstance(block.mlp, MoEFFN) else block.mlp(h)
        x = x + (m.out if isinstance(m, tuple) else m)
    return model.lm_head(model.ln_f(x))


def test_hash_routed_layers_lists_only_the_hash_moe_blocks():
    assert hash_routed_layers(_hash_model(layers=(0, 2))) == [0, 2]
    switch = TinyGPT(CFG, ffn=moe_ffn(MoEConfig(3, router="topk")))
    assert hash_routed_layers(switch) == []
    with pytest.raises(ValueError, match="no MoEFFN with a HashRouter"):
        feed_token_ids(switch)
    with pytest.raises(TypeError, match="TinyGPT"):
        hash_routed_layers(torch.nn.Linear(2, 2))


def test_a_hash_model_needs_the_hook_and_then_equals_the_explicit_forward_in_values_and_gradients():
    model = _hash_model(layers=(0, 2))
    idx = torch.randint(0, CFG.vocab_size, (2, 7), generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="needs token_ids"):
        model(idx)
    handles = feed_token_ids(model)
    logits = model(idx).logits
    reference = _by_hand(model, idx)
    torch.testing.assert_close(logits, reference, rtol=0, atol=1e-6)
    w = model.blocks[2].mlp.experts.w1
    g_fast = torch.autograd.grad(logits.square().sum(), w)[0]
    g_slow = torch.autograd.grad(_by_hand(model, idx).square().sum(), w)[0]
    torch.testing.assert_close(g_fast, g_slow, rtol=1e-5, atol=1e-7)
    # position (b, t) went to the expert the table names for idx[b, t]
    seen = {}

    def record(module, args, kwargs, output):
        seen["r"] = module.route(args[0], token_ids=kwargs["token_ids"])
    model.blocks[0].mlp.register_forward_hook(record, with_kwargs=True)
    model(idx)
    table = model.blocks[0].mlp.router.table
    assert torch.equal(seen["r"].experts[:, 0], table[idx.reshape(-1)])
    for h in handles:
        h.remove()
    with pytest.raises(ValueError, match="needs token_ids"):
        model(idx)


def test_the_ids_do_not_outlive_the_forward_pass():
    model = _hash_model()
    feed_token_ids(model)
    idx = torch.randint(0, CFG.vocab_size, (1, 5))
    model(idx)
    with pytest.raises(RuntimeError, match="outside its model's forward pass"):
        model.blocks[1].mlp(torch.randn(1, 5, CFG.n_embd))
    out = model.blocks[1].mlp(torch.randn(1, 5, CFG.n_embd), token_ids=idx)    # explicit ids still work
    assert out.out.shape == (1, 5, CFG.n_embd)
