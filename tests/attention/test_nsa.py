"""NSA: the identity cases of each branch, the selection rule, and the module in TinyGPT."""
import pytest
import torch

from sparsity_core.attention import causal_mask, masked_attention
from sparsity_core.attention.nsa import NSAAttention, NSAConfig, compress, compression_starts, nsa_attention, selection_mask
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
