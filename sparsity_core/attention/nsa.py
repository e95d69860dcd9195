"""Native Sparse Attention (yuan2025native, Sec. 3): compression, selection and a sliding window,
mixed by learned gates. A dense-mask reference implementation (the identity cases are tests).

For query ``t`` (causal, 0-based) and per head:

* **compression**: blocks of ``l`` keys with stride ``d`` (block ``i`` covers
  ``[i d, i d + l)``) are summarised by a learned map :math:`\\varphi` into one key and one value
  each (:func:`compress`); ``t`` attends to the compressed blocks that end at or before it
  (Eq. 7).
* **selection**: the compression attention probabilities :math:`p_\\text{cmp}` score the
  selection blocks of ``l'`` tokens, :math:`p_\\text{slc}[j] = \\sum p_\\text{cmp}[i]` over the
  compression blocks ``i`` overlapping block ``j`` (Eq. 9; equal to :math:`p_\\text{cmp}` when
  ``l = l' = d``); ``t`` attends, token by token, to the keys of its ``n`` best blocks among those
  starting at or before it, the initial block and the two local blocks always included (Sec. 4:
  "1 initial block and 2 local blocks"), causally (Eqs. 10-12).
* **window**: the last ``w`` keys (``t - w < j <= t``).
* output :math:`o_t = \\sum_c g^c_t\\, \\mathrm{Attn}(q_t, K^c_t, V^c_t)`, gates
  :math:`g^c_t \\in [0, 1]` from a linear map and a sigmoid of the token (Eq. 5).

:func:`nsa_attention` computes each branch with the dense reference :func:`masked_attention`;
:func:`nsa_attention_sdpa`, its fast twin (the one :class:`NSAAttention` trains with), with
``scaled_dot_product_attention`` and bool or additive masks: same values and gradients (a test).

The paper gives each branch its own keys and values; :class:`NSAAttention` can share them
(``shared_kv=True``, the default: the parameter count stays near dense attention's).

Identity cases (tests): only the window with ``w >= T``, only the selection with ``n`` at least
the number of blocks, or only the compression with ``l = d = 1`` and :math:`\\varphi` the identity,
each equal full causal attention.

Taught in: Chapter 6, "Sparse attention".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import checks
from .patterns import local_mask
from .reference import masked_attention, masked_softmax

__all__ = ["NSAConfig", "compression_starts", "compress", "selection_mask", "nsa_attention", "nsa_attention_sdpa",
           "NSAAttention"]


@dataclass(frozen=True)
class NSAConfig:
    """NSA's sizes (the paper's: ``l = 32, d = 16, l' = 64, n = 16, w = 512``).

    Args:
        cmp_block: l, tokens per compression block.
        cmp_stride: d, ``1 <= d <= l``.
        sel_block: l', tokens per selection block.
        n_select: n, selected blocks per query (>= 3 with the forced initial and local ones).
        window: w, sliding-window keys.
    """

    cmp_block: int = 32
    cmp_stride: int = 16
    sel_block: int = 64
    n_select: int = 16
    window: int = 512

    def __post_init__(self) -> None:
        checks.positive_int(self.cmp_block, "cmp_block")
        checks.integer(self.cmp_stride, "cmp_stride", lo=1, hi=self.cmp_block)
        checks.positive_int(self.sel_block, "sel_block")
        checks.positive_int(self.n_select, "n_select")
        checks.positive_int(self.window, "window")


def compression_starts(T: int, cmp_block: int, cmp_stride: int) -> torch.Tensor:
    """``(nc,)`` first token of each compression block that fits in ``T`` tokens."""
    T = checks.positive_int(T, "T")
    if T < cmp_block:
        return torch.zeros(0, dtype=torch.long)
    return torch.arange(0, T - cmp_block + 1, cmp_stride)


def compress(x: torch.Tensor, cmp_block: int, cmp_stride: int, phi) -> torch.Tensor:
    """``(*, nc, D')``: :math:`\\varphi` of each compression block of ``x (*, T, D)``; ``phi``
    maps ``(*, nc, l, D)`` to ``(*, nc, D')``."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError("x must be a tensor (*, T, D)")
    cmp_block = checks.positive_int(cmp_block, "cmp_block")
    cmp_stride = checks.integer(cmp_stride, "cmp_stride", lo=1, hi=cmp_block)
    starts = compression_starts(x.shape[-2], cmp_block, cmp_stride)
    if starts.numel():                                                       # (*, nc, l, D) strided view, copied
        return phi(x.unfold(-2, cmp_block, cmp_stride).transpose(-1, -2).contiguous())
    return phi(x[..., starts[:, None] + torch.arange(cmp_block)[None, :], :])   # no block: (*, 0, l, D)


def _compression_mask(T: int, config: NSAConfig) -> torch.Tensor:
    """``(T, nc)``: query ``t`` sees block ``i`` when the block ends at or before ``t``."""
    ends = compression_starts(T, config.cmp_block, config.cmp_stride) + config.cmp_block - 1
    return ends[None, :] <= torch.arange(T)[:, None]


def selection_mask(p_cmp: torch.Tensor, T: int, config: NSAConfig) -> torch.Tensor:
    """``(*, T, T)`` bool: the keys each query attends to in the selection branch.

    Args:
        p_cmp: ``(*, T, nc)`` compression attention probabilities (0 where not visible).
        T: tokens.
        config: the sizes.
    """
    T = checks.positive_int(T, "T")
    nc = compression_starts(T, config.cmp_block, config.cmp_stride).numel()
    if not isinstance(p_cmp, torch.Tensor) or p_cmp.dim() < 2 or p_cmp.shape[-2:] != (T, nc):
        raise ValueError(f"p_cmp must be (*, {T}, {nc}) for T = {T} and this config "
                         f"(got {tuple(p_cmp.shape) if isinstance(p_cmp, torch.Tensor) else type(p_cmp).__name__})")
    return _expand_blocks(_selected_blocks(p_cmp, T, config), T, config.sel_block)


def _selected_blocks(p_cmp: torch.Tensor, T: int, config: NSAConfig) -> torch.Tensor:
    """``(*, T, ns)`` bool: the selection blocks each query attends to (Eqs. 9-11, the forced initial
    and local blocks included), among those starting at or before the query."""
    lp = config.sel_block
    ns = -(-T // lp)                                                         # selection blocks
    starts = compression_starts(T, config.cmp_block, config.cmp_stride)
    ends = starts + config.cmp_block                                         # exclusive
    sel_start = torch.arange(ns) * lp
    overlap = (starts[:, None] < sel_start[None, :] + lp) & (ends[:, None] > sel_start[None, :])   # (nc, ns)
    p_slc = p_cmp @ overlap.to(p_cmp.dtype)                                  # (*, T, ns)
    t = torch.arange(T)[:, None]
    visible = sel_start[None, :] <= t                                        # (T, ns)
    block, current = torch.arange(ns)[None, :], t // lp
    forced = (block == 0) | (block == current) | (block == current - 1)     # initial + 2 local blocks
    score = p_slc.masked_fill(~visible, float("-inf")).masked_fill(forced & visible, float("inf"))
    k = min(config.n_select, ns)
    chosen = score.argsort(dim=-1, descending=True, stable=True)[..., :k]
    return torch.zeros(score.shape, dtype=torch.bool).scatter_(-1, chosen, True) & visible


def _expand_blocks(blocks: torch.Tensor, T: int, lp: int, dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """``(*, T, T)``: the tokens of the chosen blocks ``(*, T, ns)`` of ``lp`` tokens, causally
    (key ``j <= t``), as a bool mask, or for a floating ``dtype`` as the additive mask (0 where
    attended, ``-inf`` elsewhere) SDPA would otherwise build from it. Broadcast copies into one
    contiguous output, then one in-place causal cut (no ``(*, T, T)`` index or intermediate)."""
    additive = dtype != torch.bool
    src = torch.zeros(blocks.shape, dtype=dtype).masked_fill_(~blocks, float("-inf")) if additive else blocks
    tokens = torch.empty((*blocks.shape[:-1], T), dtype=dtype)
    full = T // lp                                                           # whole blocks; a partial last one
    if full:
        dst = tokens[..., :full * lp].unflatten(-1, (full, lp))
        dst.copy_(src[..., :full, None].expand_as(dst))
    if T > full * lp:
        dst = tokens[..., full * lp:]
        dst.copy_(src[..., full:full + 1].expand_as(dst))
    causal = torch.ones(T, T, dtype=torch.bool).tril_()
    if additive:
        tokens += torch.zeros(T, T, dtype=dtype).masked_fill_(~causal, float("-inf"))
    else:
        tokens &= causal
    return tokens


def nsa_attention(q: torch.Tensor, branches: dict[str, tuple[torch.Tensor, torch.Tensor]], gates: torch.Tensor,
                  config: NSAConfig) -> torch.Tensor:
    """``(*, T, Dv)``: the gated sum of the three branches.

    Args:
        q: ``(*, T, D)`` queries.
        branches: ``{"cmp": (k_cmp (*, nc, D), v_cmp (*, nc, Dv)), "slc": (k, v), "win": (k, v)}``
            with ``k, v (*, T, D / Dv)`` (the same tensors for shared keys and values).
        gates: ``(*, T, 3)`` in ``[0, 1]``, the weights of (cmp, slc, win).
        config: the sizes.
    """
    _check_nsa_args(q, branches, gates, config)
    T = q.shape[-2]
    k_cmp, v_cmp = branches["cmp"]
    cmp_mask = _compression_mask(T, config)                                  # (T, nc)
    o_cmp = masked_attention(q, k_cmp, v_cmp, cmp_mask)
    p_cmp = _compression_probs(q, k_cmp, cmp_mask)
    k_s, v_s = branches["slc"]
    o_slc = masked_attention(q, k_s, v_s, selection_mask(p_cmp, T, config))
    k_w, v_w = branches["win"]
    o_win = masked_attention(q, k_w, v_w, local_mask(T, config.window))
    g = gates.to(q.dtype)
    return g[..., 0:1] * o_cmp + g[..., 1:2] * o_slc + g[..., 2:3] * o_win


def nsa_attention_sdpa(q: torch.Tensor, branches: dict[str, tuple[torch.Tensor, torch.Tensor]],
                       gates: torch.Tensor, config: NSAConfig) -> torch.Tensor:
    """``(*, T, Dv)``: :func:`nsa_attention` (same arguments, same values and gradients up to
    rounding), each branch computed by ``torch.nn.functional.scaled_dot_product_attention`` with a
    mask (the static ``(T, nc)`` and ``(T, T)`` bool masks of the compression and the window,
    broadcast; the selection's per-query ``(*, T, T)`` as an additive 0 / ``-inf`` mask) instead of
    a dense masked softmax: the fast path :class:`NSAAttention` trains with.

    The compression branch runs only on the queries that see a compressed block (``t >= l - 1``;
    the others output zeros and pass no gradient, :func:`masked_attention`'s convention, where SDPA
    would give NaN); every query sees a selected block (the initial one) and a window key (itself).
    The selection uses the same compression probabilities as :func:`nsa_attention`, so both choose
    the same blocks.
    """
    _check_nsa_args(q, branches, gates, config)
    T = q.shape[-2]
    k_cmp, v_cmp = branches["cmp"]
    cmp_mask = _compression_mask(T, config)                                  # (T, nc)
    first = config.cmp_block - 1                                             # first query seeing a block
    if cmp_mask.shape[-1] == 0:                                              # T < l: no block, all zeros
        o_cmp = masked_attention(q, k_cmp, v_cmp, cmp_mask)
    else:
        o_cmp = _sdpa(q[..., first:, :], k_cmp, v_cmp, cmp_mask[first:])
        o_cmp = nn.functional.pad(o_cmp, (0, 0, first, 0))                 # rows t < l - 1: zeros
    p_cmp = _compression_probs(q, k_cmp, cmp_mask)
    k_s, v_s = branches["slc"]
    slc_mask = _expand_blocks(_selected_blocks(p_cmp, T, config), T, config.sel_block, dtype=q.dtype)   # additive
    o_slc = _sdpa(q, k_s, v_s, slc_mask)
    k_w, v_w = branches["win"]
    o_win = _sdpa(q, k_w, v_w, local_mask(T, config.window))
    g = gates.to(q.dtype)
    return g[..., 0:1] * o_cmp + g[..., 1:2] * o_slc + g[..., 2:3] * o_win


def _check_nsa_args(q, branches, gates, config) -> None:
    if not isinstance(config, NSAConfig):
        raise TypeError(f"config must be an NSAConfig (got {type(config).__name__})")
    if not isinstance(branches, dict) or set(branches) != {"cmp", "slc", "win"}:
        raise ValueError("branches must map exactly 'cmp', 'slc' and 'win' to (keys, values)")
    if q.dim() < 2 or gates.shape != (*q.shape[:-1], 3):
        raise ValueError(f"gates must be (*, T, 3) = {(*q.shape[:-1], 3)} for q {tuple(q.shape)} "
                         f"(got {tuple(gates.shape)})")


def _compression_probs(q: torch.Tensor, k_cmp: torch.Tensor, cmp_mask: torch.Tensor) -> torch.Tensor:
    """``(*, T, nc)`` :math:`p_\\text{cmp}`, without gradient (the selection is a discrete choice)."""
    with torch.no_grad():
        scores = q @ k_cmp.transpose(-2, -1) / q.shape[-1] ** 0.5
        return masked_softmax(scores, cmp_mask.expand_as(scores))


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SDPA where ``mask`` (broadcastable to ``(*, N, M)``; bool, or additive 0 / ``-inf``) lets a
    query attend; every row must see a key."""
    return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class _BlockMLP(nn.Module):
    """:math:`\\varphi`: an MLP over a block of ``l`` head-dim vectors plus a learned intra-block
    position embedding, ``(*, nc, l, D) -> (*, nc, D)`` (yuan2025native Eq. 7)."""

    def __init__(self, block: int, dim: int):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(block, dim))
        self.fc = nn.Linear(block * dim, 2 * dim)
        self.proj = nn.Linear(2 * dim, dim)

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        x = (blocks + self.pos).flatten(-2)
        return self.proj(nn.functional.gelu(self.fc(x)))


class NSAAttention(nn.Module):
    """Causal multi-head NSA for TinyGPT's attention slot: ``(B, T, C) -> (B, T, C)``.

    Args:
        n_embd: C; n_head: heads (dividing C).
        config: :class:`NSAConfig`.
        shared_kv: one key/value projection for the three branches (else one each, as the paper).
        bias: biases of the projections.
        fast: compute the branches with :func:`nsa_attention_sdpa` (default; else the dense
            reference :func:`nsa_attention`: same values and gradients, slower).

    Use as ``TinyGPT(cfg, attention=lambda c, i: NSAAttention(c.n_embd, c.n_head, nsa_cfg))``.
    """

    def __init__(self, n_embd: int, n_head: int, config: NSAConfig, *, shared_kv: bool = True, bias: bool = False,
                 fast: bool = True):
        super().__init__()
        C, H = checks.positive_int(n_embd, "n_embd"), checks.positive_int(n_head, "n_head")
        if C % H:
            raise ValueError(f"n_head {H} must divide n_embd {C}")
        if not isinstance(config, NSAConfig):
            raise TypeError(f"config must be an NSAConfig (got {type(config).__name__})")
        self.n_head, self.config, self.shared_kv, self.fast = H, config, bool(shared_kv), bool(fast)
        kv_sets = 1 if shared_kv else 3
        self.c_attn = nn.Linear(C, C * (1 + 2 * kv_sets), bias=bias)
        self.phi_k = _BlockMLP(config.cmp_block, C // H)
        self.phi_v = _BlockMLP(config.cmp_block, C // H)
        self.gate = nn.Linear(C, 3 * H)
        self.c_proj = nn.Linear(C, C, bias=bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)     # (B, H, T, hd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"x must be (B, T, C) (got {tuple(x.shape)})")
        B, T, C = x.shape
        parts = [self._heads(p) for p in self.c_attn(x).split(C, dim=-1)]
        q = parts[0]
        kv = [(parts[1 + 2 * s], parts[2 + 2 * s]) for s in range(len(parts) // 2)]
        k_c, v_c = kv[0]
        k_s, v_s = kv[0 if self.shared_kv else 1]
        k_w, v_w = kv[0 if self.shared_kv else 2]
        cfg = self.config
        branches = {"cmp": (compress(k_c, cfg.cmp_block, cfg.cmp_stride, self.phi_k),
                            compress(v_c, cfg.cmp_block, cfg.cmp_stride, self.phi_v)),
                    "slc": (k_s, v_s), "win": (k_w, v_w)}
        gates = torch.sigmoid(self.gate(x)).view(B, T, self.n_head, 3).transpose(1, 2)   # (B, H, T, 3)
        y = (nsa_attention_sdpa if self.fast else nsa_attention)(q, branches, gates, cfg)   # (B, H, T, hd)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))
