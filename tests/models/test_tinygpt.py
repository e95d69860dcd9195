"""TinyGPT: shapes, the SDPA path against the explicit path and a per-query slow twin,
swappable parts, hook points, causality, aux losses, sampling, config validation."""
import math

import pytest
import torch
from torch import nn

from sparsity_core.models import (
    BlockOutput, CausalSelfAttention, FeedForward, GPTOutput, TinyGPT, TinyGPTConfig, capture,
    hook_points, num_params, tinygpt_medium, tinygpt_small,
)

CFG = TinyGPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
B, T = 3, 8


def _model(config=CFG, **kwargs) -> TinyGPT:
    return TinyGPT(config, generator=torch.Generator().manual_seed(0), **kwargs)


def _tokens(seed=1, b=B, t=T, vocab=CFG.vocab_size) -> torch.Tensor:
    return torch.randint(vocab, (b, t), generator=torch.Generator().manual_seed(seed))


def _logits_and_grads(model, idx):
    model.zero_grad()
    out = model(idx, idx)
    out.loss.backward()
    return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _assert_same(a, b, atol=1e-5):
    (la, ga), (lb, gb) = a, b
    torch.testing.assert_close(la, lb, atol=atol, rtol=0)
    assert ga.keys() == gb.keys()
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], atol=atol, rtol=0, msg=name)


class SlowAttention(CausalSelfAttention):
    """Slow twin: one query position and one head at a time, plain softmax over the past."""

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        rows = []
        for t in range(T):
            heads = []
            for h in range(self.n_head):
                sl = slice(h * hs, (h + 1) * hs)
                scores = (k[:, : t + 1, sl] @ q[:, t, sl].unsqueeze(-1)).squeeze(-1) / math.sqrt(hs)  # (B, t+1)
                heads.append((scores.softmax(-1).unsqueeze(-1) * v[:, : t + 1, sl]).sum(1))  # (B, hs)
            rows.append(torch.cat(heads, dim=-1))
        return BlockOutput(self.c_proj(torch.stack(rows, dim=1)), {})


class SlowFeedForward(FeedForward):
    """Slow twin: one token at a time, returned as a plain (tensor, {}) tuple."""

    def forward(self, x):
        B, T, C = x.shape
        out = torch.stack([self.c_proj(self.gelu(self.c_fc(x[:, t]))) for t in range(T)], dim=1)
        return out, {}


def test_forward_backward_shapes():
    model = _model()
    idx = _tokens()
    out = model(idx, idx)
    assert isinstance(out, GPTOutput) and out.aux == {}
    assert out.logits.shape == (B, T, CFG.vocab_size) and out.loss.dim() == 0
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model(idx[:, :3]).loss is None  # shorter context, no targets
    assert model.lm_head.weight is model.wte.weight  # tied


def test_initial_loss_is_near_uniform():
    out = _model()(_tokens(), _tokens(2))
    assert abs(out.loss.item() - math.log(CFG.vocab_size)) < 0.1  # N(0, 0.02) init


def test_sdpa_path_equals_explicit_path():
    model = _model()
    idx = _tokens()
    fast = _logits_and_grads(model, idx)
    assert not model.blocks[0].attn.probs_requested()
    for block in model.blocks:
        block.attn.explicit = True
    _assert_same(fast, _logits_and_grads(model, idx))


def test_a_hook_on_attn_probs_switches_to_the_explicit_path():
    model = _model()
    idx = _tokens()
    fast = _logits_and_grads(model, idx)
    names = [f"blocks.{i}.attn.hook_attn_probs" for i in range(CFG.n_layer)]
    with capture(model, names) as acts:
        assert model.blocks[0].attn.probs_requested()
        slow = _logits_and_grads(model, idx)
    assert not model.blocks[0].attn.probs_requested()  # hook removed
    _assert_same(fast, slow)
    probs = acts[names[0]]
    assert probs.shape == (B, CFG.n_head, T, T)
    torch.testing.assert_close(probs.sum(-1), torch.ones(B, CFG.n_head, T))
    assert (probs.triu(1) == 0).all()  # no attention to the future


def test_any_hook_on_attn_probs_counts_until_its_handle_is_removed():
    model = _model()
    idx = _tokens()
    fast = _logits_and_grads(model, idx)
    attn = model.blocks[0].attn
    seen = []
    pre = attn.hook_attn_probs.register_forward_pre_hook(lambda m, args: seen.append("pre"))
    post = attn.hook_attn_probs.register_forward_hook(lambda m, args, out: seen.append("post"))
    assert attn.probs_requested()
    _assert_same(fast, _logits_and_grads(model, idx))
    assert seen == ["pre", "post"]
    post.remove()
    assert attn.probs_requested()            # the pre-hook is still there
    pre.remove()
    pre.remove()                             # removing twice is harmless
    assert not attn.probs_requested()
    with attn.hook_attn_probs.register_forward_hook(lambda m, args, out: None):
        assert attn.probs_requested()
    assert not attn.probs_requested()
    model(idx)
    assert seen == ["pre", "post"]           # removed hooks are not called
    assert not model.blocks[1].attn.probs_requested()  # hooks are per module


def test_slow_twins_leave_logits_and_grads_unchanged():
    reference = _model()
    idx = _tokens()
    expected = _logits_and_grads(reference, idx)
    for kwargs in ({"attention": SlowAttention}, {"ffn": SlowFeedForward},
                   {"attention": SlowAttention, "ffn": SlowFeedForward}):
        twin = TinyGPT(CFG, **kwargs)
        twin.load_state_dict(reference.state_dict())
        _assert_same(expected, _logits_and_grads(twin, idx))


def test_factories_receive_config_and_layer_index():
    seen = []

    def ffn(config, i):
        seen.append((config, i))
        return FeedForward(config, i)

    TinyGPT(CFG, ffn=ffn)
    assert seen == [(CFG, 0), (CFG, 1)]


class AuxFeedForward(FeedForward):
    """A dummy FFN that reports an auxiliary loss of (layer_index + 1) * mean(W_fc)."""

    def __init__(self, config, layer_index):
        super().__init__(config, layer_index)
        self.scale = layer_index + 1

    def forward(self, x):
        return BlockOutput(super().forward(x), {"balance": self.scale * self.c_fc.weight.mean()})


class AuxAttention(CausalSelfAttention):
    def forward(self, x):
        return super().forward(x), {"balance": torch.tensor(10.0), "attn_only": torch.tensor(1.0)}


def test_aux_losses_are_summed_over_layers_and_modules():
    model = _model(ffn=AuxFeedForward, attention=AuxAttention)
    out = model(_tokens(), _tokens())
    expected = sum((i + 1) * blk.mlp.c_fc.weight.mean() for i, blk in enumerate(model.blocks))
    torch.testing.assert_close(out.aux["balance"], expected + 10.0 * CFG.n_layer)
    torch.testing.assert_close(out.aux["attn_only"], torch.tensor(float(CFG.n_layer)))
    out.aux["balance"].backward()  # aux losses carry gradients to their modules
    assert model.blocks[1].mlp.c_fc.weight.grad is not None


def test_bad_submodule_outputs_and_factories_are_rejected():
    class Bad(nn.Module):
        def __init__(self, config, i):
            super().__init__()

        def forward(self, x):
            return [x]

    with pytest.raises(TypeError, match="ffn must return"):
        TinyGPT(CFG, ffn=Bad)(_tokens())
    with pytest.raises(TypeError, match="factory must return an nn.Module"):
        TinyGPT(CFG, attention=lambda config, i: "attention")
    with pytest.raises(TypeError, match="attention must be a callable"):
        TinyGPT(CFG, attention=3)


def test_hook_points_capture_documented_shapes():
    model = _model()
    names = hook_points(model)
    assert len(names) == CFG.n_layer * 8
    hs = CFG.n_embd // CFG.n_head
    expected = {
        "hook_resid_pre": (B, T, CFG.n_embd), "hook_resid_mid": (B, T, CFG.n_embd),
        "hook_resid_post": (B, T, CFG.n_embd), "hook_mlp_act": (B, T, 4 * CFG.n_embd),
        "hook_q": (B, CFG.n_head, T, hs), "hook_k": (B, CFG.n_head, T, hs),
        "hook_v": (B, CFG.n_head, T, hs), "hook_attn_probs": (B, CFG.n_head, T, T),
    }
    with capture(model, names) as acts:
        out = model(_tokens())
    assert set(acts) == set(names)
    for name, value in acts.items():
        assert value.shape == expected[name.rsplit(".", 1)[-1]], name
        assert not value.requires_grad
    # the residual stream links up: post of block 0 is pre of block 1; the MLP activations are GELU
    torch.testing.assert_close(acts["blocks.0.hook_resid_post"], acts["blocks.1.hook_resid_pre"])
    assert (acts["blocks.0.mlp.hook_mlp_act"] >= -0.17).all()  # min of GELU is about -0.17
    last = model.lm_head(model.ln_f(acts["blocks.1.hook_resid_post"]))
    torch.testing.assert_close(last, out.logits.detach())
    assert all(not m._forward_hooks for m in model.modules())  # all removed


def test_capture_errors():
    model = _model()
    with pytest.raises(KeyError, match="hook points"):
        with capture(model, ["blocks.9.hook_q"]):
            pass
    with pytest.raises(TypeError, match="list"):
        with capture(model, "blocks.0.hook_resid_pre"):
            pass


def test_capture_removes_hooks_on_error():
    model = _model()
    with pytest.raises(RuntimeError, match="boom"):
        with capture(model, ["blocks.0.hook_resid_pre"]):
            raise RuntimeError("boom")
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("explicit", [False, True])
def test_causality(explicit):
    model = _model()
    for block in model.blocks:
        block.attn.explicit = explicit
    idx = _tokens()
    t = 5
    changed = idx.clone()
    changed[:, t] = (changed[:, t] + 1) % CFG.vocab_size
    a, b = model(idx).logits, model(changed).logits
    torch.testing.assert_close(a[:, :t], b[:, :t], atol=0, rtol=0)
    assert not torch.allclose(a[:, t:], b[:, t:])


def test_generate_is_deterministic_for_a_generator_seed():
    model = _model(TinyGPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.5))
    prompt = _tokens(t=3)

    def sample(seed, **kw):
        return model.generate(prompt, 4, generator=torch.Generator().manual_seed(seed), **kw)

    a = sample(0)
    assert a.shape == (B, 7) and a.dtype == torch.long and torch.equal(a[:, :3], prompt)
    assert torch.equal(a, sample(0))
    assert not torch.equal(a, sample(1))
    assert model.training  # mode restored
    assert torch.equal(sample(0, top_k=3, temperature=0.7), sample(0, top_k=3, temperature=0.7))


def test_generate_top_k_1_is_greedy():
    model = _model()
    prompt = _tokens(t=2)
    out = model.generate(prompt, 4, generator=torch.Generator().manual_seed(0), top_k=1)
    for t in range(2, 6):
        assert torch.equal(out[:, t], model(out[:, :t]).logits[:, -1].argmax(-1))


def test_generate_crops_to_block_size():
    model = _model()
    long_prompt = _tokens(t=CFG.block_size + 5)
    new = CFG.block_size + 2  # the context window slides past the whole prompt
    out = model.generate(long_prompt, new, generator=torch.Generator().manual_seed(0))
    assert out.shape == (B, 2 * CFG.block_size + 7)
    # only the last block_size tokens matter: the cropped prompt gives the same samples
    cropped = model.generate(long_prompt[:, -CFG.block_size:], new, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, -new:], cropped[:, -new:])


def test_generate_argument_errors():
    model = _model()
    prompt = _tokens(t=2)
    with pytest.raises(TypeError, match="generator"):
        model.generate(prompt, 2, generator=None)
    g = torch.Generator()
    for kwargs, match in [({"temperature": 0.0}, "temperature"), ({"top_k": 0}, "top_k")]:
        with pytest.raises(ValueError, match=match):
            model.generate(prompt, 2, generator=g, **kwargs)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(prompt, -1, generator=g)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_embd": 15}, "divisible"), ({"n_layer": 0}, "n_layer"), ({"vocab_size": 2.0}, "vocab_size"),
    ({"dropout": 1.0}, "dropout"), ({"dropout": -0.1}, "dropout"), ({"mlp_ratio": 0}, "mlp_ratio"),
    ({"block_size": True}, "block_size"),
])
def test_config_validation(kwargs, match):
    base = dict(vocab_size=11, block_size=8, n_layer=2, n_head=3, n_embd=15)
    base["n_head"] = 2 if "n_embd" in kwargs else 3
    with pytest.raises(ValueError, match=match):
        TinyGPTConfig(**{**base, **kwargs})


def test_config_is_frozen_and_has_derived_sizes():
    assert CFG.head_size == 8 and CFG.d_ff == 64
    with pytest.raises(Exception):
        CFG.n_layer = 3


def test_forward_input_errors():
    model = _model()
    with pytest.raises(ValueError, match="block_size"):
        model(_tokens(t=CFG.block_size + 1))
    with pytest.raises(ValueError, match="int64"):
        model(_tokens().float())
    with pytest.raises(ValueError, match="targets"):
        model(_tokens(), _tokens()[:, :-1])


def test_init_scheme_and_generator():
    a, b = _model().state_dict(), _model().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    model = _model(TinyGPTConfig(vocab_size=64, block_size=64, n_layer=4, n_head=2, n_embd=64, bias=True))
    assert abs(model.wte.weight.std().item() - 0.02) < 2e-3
    assert abs(model.blocks[0].mlp.c_proj.weight.std().item() - 0.02 / math.sqrt(8)) < 1e-3
    assert (model.blocks[0].attn.c_attn.bias == 0).all()


def test_dropout_trains_on_both_paths():
    model = _model(TinyGPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.1))
    idx = _tokens(vocab=11)
    eval_loss = {}
    for explicit in (False, True):
        model.blocks[0].attn.explicit = explicit
        model.train()
        model.zero_grad()
        losses = [model(idx, idx).loss for _ in range(2)]
        assert losses[0].item() != losses[1].item(), "dropout is active in training mode"
        losses[0].backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, (explicit, name)
        model.eval()
        with torch.no_grad():
            a, b = model(idx, idx).loss, model(idx, idx).loss
        assert a.item() == b.item(), "no dropout in eval mode"
        eval_loss[explicit] = a
    torch.testing.assert_close(eval_loss[False], eval_loss[True])   # both attention paths agree without dropout


def test_presets_sizes():
    small, medium = TinyGPT(tinygpt_small(96)), TinyGPT(tinygpt_medium(96))
    n_small, n_medium = num_params(small), num_params(medium)
    assert 1_000_000 <= n_small <= 1_500_000
    assert 3.5 <= n_medium / n_small <= 4.5 and num_params(medium, non_embedding=False) <= 10_000_000
    assert tinygpt_small(50, block_size=64).block_size == 64
