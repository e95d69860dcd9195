"""NSA: the identity cases of each branch, the selection rule, the module in TinyGPT, and the fast
SDPA path against the dense reference (values and gradients)."""
import math

import pytest
import torch

from sparsity_core.attention import causal_mask, masked_attention
from sparsity_core.attention.nsa import (NSAAttention, NSAConfig, compress, compression_starts, nsa_attention,
                                         nsa_attention_sdpa, selection_mask)
from sparsity_core.models import TinyGPT, TinyGPTConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _qkv(T=20, D=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, T, D, generator=g, dtype=torch.float64) for _ in range(3)]


def _gates(T, which):
    g = torch.zeros(2, 3, T, 3, dtype=torch.float64)
    g[..., which] = 1.0
    return g


def test_each_branch_alone_can_be_full_causal_attention():
    T = 20
    q, k, v = _qkv(T)
    full = masked_attention(q, k, v, causal_mask(T))
    identity = lambda blocks: blocks[..., 0, :]                             # l = 1: the token itself
    cfg_c = NSAConfig(cmp_block=1, cmp_stride=1, sel_block=4, n_select=3, window=2)
    branches = {"cmp": (compress(k, 1, 1, identity), compress(v, 1, 1, identity)), "slc": (k, v), "win": (k, v)}
    torch.testing.assert_close(nsa_attention(q, branches, _gates(T, 0), cfg_c), full)
    cfg_s = NSAConfig(cmp_block=4, cmp_stride=4, sel_block=4, n_select=5, window=2)   # 5 blocks of 4 = all
    mean = lambda blocks: blocks.mean(dim=-2)
    branches = {"cmp": (compress(k, 4, 4, mean), compress(v, 4, 4, mean)), "slc": (k, v), "win": (k, v)}
    torch.testing.assert_close(nsa_attention(q, branches, _gates(T, 1), cfg_s), full)
    cfg_w = NSAConfig(cmp_block=4, cmp_stride=4, sel_block=4, n_select=3, window=T)
    torch.testing.assert_close(nsa_attention(q, branches, _gates(T, 2), cfg_w), full)


def test_selection_keeps_forced_blocks_and_the_best_scored_others_causally():
    T, cfg = 16, NSAConfig(cmp_block=2, cmp_stride=2, sel_block=2, n_select=5, window=1)   # 3 forced + 2 chosen
    nc = compression_starts(T, 2, 2).numel()
    assert nc == 8
    p = torch.zeros(T, nc)
    p[15, 3] = 1.0                                            # query 15 likes block 3 (tokens 6, 7)
    p[15, 5] = 0.5                                            # then block 5 (tokens 10, 11)
    m = selection_mask(p, T, cfg)
    assert m[15].nonzero().flatten().tolist() == [0, 1, 6, 7, 10, 11, 12, 13, 14, 15]   # + initial + 2 local
    assert not (m & ~causal_mask(T)).any()
    assert m[3].nonzero().flatten().tolist() == [0, 1, 2, 3]  # early queries: only the forced blocks exist
    assert int(m[1].sum()) == 2 and int(m[0].sum()) == 1


def test_nsa_module_in_tinygpt_trains_and_shares_or_splits_its_keys():
    cfg = TinyGPTConfig(vocab_size=11, block_size=24, n_layer=2, n_head=2, n_embd=16)
    nsa = NSAConfig(cmp_block=4, cmp_stride=2, sel_block=4, n_select=3, window=6)
    model = TinyGPT(cfg, attention=lambda c, i: NSAAttention(c.n_embd, c.n_head, nsa),
                    generator=torch.Generator().manual_seed(0))
    idx = torch.randint(0, 11, (2, 24), generator=torch.Generator().manual_seed(1))
    out = model(idx, idx)
    out.loss.backward()
    attn = model.blocks[0].attn
    for p in (attn.phi_k.fc.weight, attn.gate.weight, attn.c_attn.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    split = NSAAttention(16, 2, nsa, shared_kv=False)
    assert split.c_attn.out_features == 16 * 7 and attn.c_attn.out_features == 16 * 3
    # causal: changing a later token does not change earlier outputs
    x = torch.randn(1, 24, 16, generator=torch.Generator().manual_seed(2))
    y = attn(x)
    x2 = x.clone()
    x2[:, 20:] += 1.0
    torch.testing.assert_close(attn(x2)[:, :20], y[:, :20])


def test_bad_input():
    with pytest.raises(ValueError):
        NSAConfig(cmp_block=4, cmp_stride=5)
    with pytest.raises(ValueError):
        NSAAttention(10, 3, NSAConfig())
    with pytest.raises(TypeError):
        NSAAttention(12, 3, {"window": 4})
    with pytest.raises(ValueError):
        NSAAttention(12, 3, NSAConfig())(torch.zeros(4, 12))
    cfg = NSAConfig(cmp_block=2, cmp_stride=2, sel_block=2, n_select=3, window=2)
    with pytest.raises(ValueError):
        selection_mask(torch.zeros(8, 3), 8, cfg)              # 8 tokens make 4 compression blocks
    q, k, v = _qkv(T=8)
    mean = lambda blocks: blocks.mean(dim=-2)
    branches = {"cmp": (compress(k, 2, 2, mean), compress(v, 2, 2, mean)), "slc": (k, v), "win": (k, v)}
    with pytest.raises(ValueError):
        nsa_attention(q, branches, torch.ones(2, 3, 8, 2), cfg)
    with pytest.raises(ValueError):
        nsa_attention(q, {"cmp": branches["cmp"]}, torch.ones(2, 3, 8, 3), cfg)
    with pytest.raises(ValueError):
        compress(k, 2, 3, mean)


def _selection_oracle(p, T, cfg):
    """The selection rule query by query, in Python: score the visible blocks (forced ones first),
    keep the ``n`` best (lower index on ties), take their tokens up to the query."""
    lp, l = cfg.sel_block, cfg.cmp_block
    starts = compression_starts(T, l, cfg.cmp_stride).tolist()
    m = torch.zeros(T, T, dtype=torch.bool)
    for t in range(T):
        cur, ranked = t // lp, []
        for j in range(t // lp + 1):                           # blocks starting at or before t
            if j in (0, cur, cur - 1):
                score = math.inf
            else:
                score = sum(float(p[t, i]) for i, s in enumerate(starts) if s < (j + 1) * lp and s + l > j * lp)
            ranked.append((-score, j))
        for _, j in sorted(ranked)[:cfg.n_select]:
            m[t, j * lp:min((j + 1) * lp, t + 1)] = True
    return m


@pytest.mark.parametrize("T, l, d, lp, n", [(16, 2, 2, 2, 5), (23, 4, 3, 5, 3), (10, 4, 2, 3, 4), (3, 4, 2, 2, 3),
                                            (17, 1, 1, 4, 2), (9, 3, 1, 1, 4)])
def test_selection_mask_matches_a_query_by_query_oracle_with_ties(T, l, d, lp, n):
    cfg = NSAConfig(cmp_block=l, cmp_stride=d, sel_block=lp, n_select=n, window=1)
    nc = compression_starts(T, l, d).numel()
    g = torch.Generator().manual_seed(T)
    p = torch.randint(0, 4, (2, T, nc), generator=g).double() / 8         # exact sums, many ties
    m = selection_mask(p, T, cfg)
    assert m.shape == (2, T, T) and m.dtype == torch.bool
    for b in range(2):
        assert torch.equal(m[b], _selection_oracle(p[b], T, cfg))


_AWKWARD = [  # (T, config): T not a multiple of the blocks, T < l (no compressed block), T = l (one)
    (21, NSAConfig(cmp_block=4, cmp_stride=3, sel_block=5, n_select=3, window=6)),
    (19, NSAConfig(cmp_block=6, cmp_stride=2, sel_block=4, n_select=4, window=3)),
    (3, NSAConfig(cmp_block=4, cmp_stride=2, sel_block=2, n_select=3, window=2)),
    (4, NSAConfig(cmp_block=4, cmp_stride=2, sel_block=3, n_select=3, window=8)),
]


@pytest.mark.parametrize("shared", [True, False], ids=["shared_kv", "split_kv"])
@pytest.mark.parametrize("T, cfg", _AWKWARD, ids=["T21", "T19", "T_lt_l", "T_eq_l"])
def test_sdpa_path_equals_the_reference_in_values_and_gradients(T, cfg, shared):
    g = torch.Generator().manual_seed(T)
    B, H, D, Dv = 2, 3, 5, 4
    leaf = lambda *shape: torch.randn(B, H, *shape, generator=g, dtype=torch.float64).requires_grad_()
    q = leaf(T, D)
    gates = torch.rand(B, H, T, 3, generator=g, dtype=torch.float64).requires_grad_()
    phi = lambda blocks: blocks.mean(dim=-2) * 2.0
    if shared:                                                # one (k, v): cmp compresses it
        k, v = leaf(T, D), leaf(T, Dv)
        kv = [k, v]
        branches = {"cmp": (compress(k, cfg.cmp_block, cfg.cmp_stride, phi),
                            compress(v, cfg.cmp_block, cfg.cmp_stride, phi)), "slc": (k, v), "win": (k, v)}
    else:                                                     # independent leaves per branch
        nc = compression_starts(T, cfg.cmp_block, cfg.cmp_stride).numel()
        kv = [leaf(nc, D), leaf(nc, Dv), leaf(T, D), leaf(T, Dv), leaf(T, D), leaf(T, Dv)]
        branches = {"cmp": (kv[0], kv[1]), "slc": (kv[2], kv[3]), "win": (kv[4], kv[5])}
    w = torch.randn(B, H, T, Dv, generator=g, dtype=torch.float64)
    inputs = [q, gates, *kv]
    results = []
    for fn in (nsa_attention, nsa_attention_sdpa):
        out = fn(q, branches, gates, cfg)
        results.append((out, torch.autograd.grad((out * w).sum(), inputs, retain_graph=True)))
    (ref, ref_grads), (fast, fast_grads) = results
    assert not fast.isnan().any()
    torch.testing.assert_close(fast, ref)
    for name, a, b in zip(["q", "gates"] + [f"kv{i}" for i in range(len(kv))], ref_grads, fast_grads):
        assert not b.isnan().any(), name
        torch.testing.assert_close(b, a, msg=lambda m, name=name: f"grad {name}: {m}")


def test_sdpa_path_compression_rows_without_a_block_are_zero_without_nan(monkeypatch):
    import sparsity_core.attention.nsa as nsa_module
    sdpa, calls = nsa_module._sdpa, []

    def checked_sdpa(q, k, v, mask):                          # SDPA gives NaN on a keyless row (torch < 2.5)
        visible = mask if mask.dtype == torch.bool else mask > float("-inf")
        assert visible.any(dim=-1).all(), "an SDPA query row with no key"
        calls.append(mask.shape)
        return sdpa(q, k, v, mask)

    monkeypatch.setattr(nsa_module, "_sdpa", checked_sdpa)
    T, cfg = 11, NSAConfig(cmp_block=4, cmp_stride=2, sel_block=4, n_select=3, window=4)
    q, k, v = (t.requires_grad_() for t in _qkv(T))
    mean = lambda blocks: blocks.mean(dim=-2)
    branches = {"cmp": (compress(k, 4, 2, mean), compress(v, 4, 2, mean)), "slc": (k, v), "win": (k, v)}
    out = nsa_attention_sdpa(q, branches, _gates(T, 0), cfg)  # compression only
    assert len(calls) == 3 and calls[0] == (T - 3, 4)        # the compression ran on queries 3..10 only
    assert torch.equal(out[..., :3, :], torch.zeros_like(out[..., :3, :]))   # queries 0..2: no block ended
    out.sum().backward()
    assert torch.equal(q.grad[..., :3, :], torch.zeros_like(q.grad[..., :3, :]))
    assert all(not t.grad.isnan().any() for t in (q, k, v))


@pytest.mark.parametrize("shared", [True, False], ids=["shared_kv", "split_kv"])
@pytest.mark.parametrize("T", [13, 3], ids=["T13", "T_lt_l"])
def test_nsa_module_fast_and_reference_paths_agree_with_parameter_gradients(T, shared):
    cfg = NSAConfig(cmp_block=4, cmp_stride=3, sel_block=3, n_select=3, window=5)
    torch.manual_seed(0)
    fast = NSAAttention(12, 2, cfg, shared_kv=shared, bias=True).double()
    ref = NSAAttention(12, 2, cfg, shared_kv=shared, bias=True, fast=False).double()
    ref.load_state_dict(fast.state_dict())
    assert fast.fast and not ref.fast
    x = torch.randn(2, T, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    w = torch.randn(2, T, 12, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    outs, x_grads = [], []
    for m in (ref, fast):
        xi = x.clone().requires_grad_()
        y = m(xi)
        (y * w).sum().backward()
        outs.append(y)
        x_grads.append(xi.grad)
    torch.testing.assert_close(outs[1], outs[0])
    torch.testing.assert_close(x_grads[1], x_grads[0])
    ref_params = dict(ref.named_parameters())
    for name, p in fast.named_parameters():
        a = ref_params[name].grad
        assert (p.grad is None) == (a is None), name
        if a is not None:
            assert not p.grad.isnan().any(), name
            torch.testing.assert_close(p.grad, a, msg=lambda m, name=name: f"grad {name}: {m}")
