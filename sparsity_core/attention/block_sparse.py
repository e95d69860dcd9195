"""Block-sparse attention: compute only the (query block, key block) tiles a block mask keeps.

Two implementations of the same function, both equal to
:func:`~sparsity_core.attention.reference.masked_attention` with the token mask
``mask & expand_blocks(block_mask, block)`` (the tests check values and gradients):

* :func:`block_gather_attention`, plain PyTorch: for each query block, gather its kept key
  blocks (padded to the largest count per row) into one ``(block, K * block)`` score tile,
  mask, softmax, and multiply by the gathered values. Work and memory are proportional to the
  kept blocks; every step is a batched matmul, so autograd gives the backward.
* :func:`flex_block_attention`, PyTorch's FlexAttention (``torch.nn.attention.flex_attention``)
  with a ``BlockMask`` built from the same masks (:func:`flex_block_mask`); compiled (``torch.compile``) it generates a
  fused kernel that skips the empty tiles (the issue's reference point, dong2024flex).

Conventions: a query whose row of the mask is empty outputs zeros (as the reference). ``N``
need not be a multiple of ``block``: the last block is partial.

Taught in: Chapter 6, "Sparse attention".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from .. import checks
from .patterns import expand_blocks

__all__ = ["block_index", "BlockLayout", "block_layout", "block_gather_attention", "flex_block_mask",
           "flex_block_attention"]


def block_index(block_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept key blocks of each query block, left-aligned and padded.

    Args:
        block_mask: ``(nq, nk)`` bool.

    Returns:
        ``(index, valid)``, both ``(nq, K)`` with ``K`` the largest number of kept blocks in a
        row (at least 1): ``index[q, :count_q]`` the kept key blocks of row ``q`` in increasing
        order, padding slots pointing at block 0 with ``valid`` False.
    """
    if not isinstance(block_mask, torch.Tensor) or block_mask.dim() != 2 or block_mask.dtype != torch.bool:
        raise ValueError("block_mask must be a 2-D bool tensor (n_query_blocks, n_key_blocks)")
    nk = block_mask.shape[1]
    K = max(1, int(block_mask.sum(dim=1).max()) if block_mask.numel() else 1)
    # kept blocks first (in increasing order), then the rest: sort on (not kept, block id)
    key = (~block_mask).long() * nk + torch.arange(nk)[None, :]
    order = key.argsort(dim=1)[:, :K]                                    # (nq, K)
    valid = block_mask.gather(1, order)
    return torch.where(valid, order, torch.zeros_like(order)), valid


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> int:
    if not all(isinstance(t, torch.Tensor) for t in (q, k, v)):
        raise TypeError("q, k and v must be tensors")
    if q.dim() < 2 or q.shape[:-1] != k.shape[:-1] or k.shape[:-1] != v.shape[:-1] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q, k, v must be (*, N, D), (*, N, D), (*, N, Dv) with one N (self-attention) "
                         f"(got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)})")
    return q.shape[-2]


def _token_mask(mask: torch.Tensor | None, block_mask: torch.Tensor, block: int, n: int) -> torch.Tensor:
    nb = -(-n // block)
    if block_mask.shape != (nb, nb):
        raise ValueError(f"block_mask must be ({nb}, {nb}) for N = {n} and block = {block} "
                         f"(got {tuple(block_mask.shape)})")
    full = expand_blocks(block_mask, block, n)
    if mask is None:
        return full
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != (n, n):
        raise ValueError(f"mask must be None or an ({n}, {n}) bool tensor")
    return mask & full


def _pad(x: torch.Tensor, length: int) -> torch.Tensor:
    extra = length - x.shape[-2]
    return x if extra == 0 else torch.cat([x, x.new_zeros(*x.shape[:-2], extra, x.shape[-1])], dim=-2)


@dataclass(frozen=True, eq=False)
class BlockLayout:
    """What :func:`block_gather_attention` needs of a pattern, computed once per pattern.

    Attributes:
        n: tokens N; block: tokens per block; nb: ``ceil(N / block)``.
        index: ``(nb, K)`` kept key blocks of each query block (:func:`block_index`).
        bias: ``(nb, block, K * block)`` float32 additive mask of the gathered tiles: 0 where the
            token mask keeps the entry, ``-inf`` elsewhere; 0 on rows with no key at all.
        rows: ``(nb, block, 1)`` float32, 1 for queries with at least one key, else 0.
        density: kept (query, key) entries over ``N^2``.
    """

    n: int
    block: int
    nb: int
    index: torch.Tensor
    bias: torch.Tensor
    rows: torch.Tensor
    density: float


def block_layout(block_mask: torch.Tensor, block: int, n: int, *, mask: torch.Tensor | None = None) -> BlockLayout:
    """The :class:`BlockLayout` of the token mask ``mask & expand_blocks(block_mask, block, n)``.

    Args:
        block_mask: ``(nb, nb)`` bool, ``nb = ceil(n / block)``.
        block: tokens per block.
        n: tokens.
        mask: optional ``(n, n)`` token mask inside the kept blocks (e.g. causal).
    """
    n = checks.positive_int(n, "n")
    b = checks.positive_int(block, "block")
    token = _token_mask(mask, block_mask, b, n)                          # (N, N)
    nb = block_mask.shape[0]
    index, valid = block_index(block_mask)                               # (nb, K)
    K = index.shape[1]
    # the token mask of each gathered tile: (nb, b, K b); padding slots and keys >= N are False
    tm = torch.zeros(nb * b, nb * b, dtype=torch.bool)
    tm[:n, :n] = token
    tiles = tm.reshape(nb, b, nb, b).permute(0, 2, 1, 3)                # (nb q, nb k, b, b)
    tiles = tiles.gather(1, index[:, :, None, None].expand(nb, K, b, b)) & valid[:, :, None, None]
    keep = tiles.permute(0, 2, 1, 3).reshape(nb, b, K * b)
    rows = keep.any(dim=2, keepdim=True)                                 # (nb, b, 1)
    bias = torch.zeros(keep.shape).masked_fill(~keep & rows, float("-inf"))
    return BlockLayout(n=n, block=b, nb=nb, index=index, bias=bias, rows=rows.float(),
                       density=int(token.sum()) / (n * n))


def block_gather_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, *,
                           scale: float | None = None) -> torch.Tensor:
    """``(*, N, Dv)``: attention restricted to the kept blocks of ``layout``, tile by tile.

    Args:
        q, k, v: ``(*, N, D)``, ``(*, N, D)``, ``(*, N, Dv)``.
        layout: a :func:`block_layout` for this N.
        scale: default ``1 / sqrt(D)``.

    Cost: ``nb * K`` tiles of ``block x block`` scores, ``K`` the most kept key blocks of any
    query block (rows with fewer are padded and masked): one gather of K and V, two batched
    matmuls, one softmax.
    """
    n = _check_qkv(q, k, v)
    if not isinstance(layout, BlockLayout) or layout.n != n:
        raise ValueError(f"layout must be a BlockLayout for N = {n} (see block_layout)")
    b, nb, index = layout.block, layout.nb, layout.index
    K = index.shape[1]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    lead = q.shape[:-2]
    qb = _pad(q, nb * b).reshape(*lead, nb, b, q.shape[-1])              # (*, nb, b, D)
    flat = index.reshape(-1)
    kg = _pad(k, nb * b).reshape(*lead, nb, b, k.shape[-1]).index_select(-3, flat)   # (*, nb K, b, D)
    vg = _pad(v, nb * b).reshape(*lead, nb, b, v.shape[-1]).index_select(-3, flat)
    kg = kg.reshape(*lead, nb, K * b, k.shape[-1])                      # (*, nb, K b, D)
    vg = vg.reshape(*lead, nb, K * b, v.shape[-1])
    scores = (qb @ kg.transpose(-2, -1)).mul_(scale).add_(layout.bias.to(q.dtype))   # (*, nb, b, K b)
    out = (scores.softmax(dim=-1) @ vg) * layout.rows.to(q.dtype)     # (*, nb, b, Dv)
    return out.reshape(*lead, nb * b, v.shape[-1])[..., :n, :]


@lru_cache(maxsize=1)
def _compiled_flex():
    from torch.nn.attention.flex_attention import flex_attention
    return torch.compile(flex_attention, dynamic=False)


def flex_block_mask(block_mask: torch.Tensor, block: int, n: int, *, mask: torch.Tensor | None = None):
    """FlexAttention's ``BlockMask`` for the token mask ``mask & expand_blocks(block_mask)``.

    The token mask becomes the ``mask_mod`` (a lookup in that tensor) and the ``BlockMask`` has
    ``block`` x ``block`` tiles, so the tiles FlexAttention computes are the kept ones (partial
    tiles trimmed by the token mask). Build it once per pattern: it evaluates the mask on every
    (query, key) pair.
    """
    from torch.nn.attention.flex_attention import create_block_mask

    n = checks.positive_int(n, "n")
    b = checks.positive_int(block, "block")
    token = _token_mask(mask, block_mask, b, n)

    def mask_mod(batch, head, q_idx, kv_idx):
        return token[q_idx, kv_idx]

    flex_mask = create_block_mask(mask_mod, None, None, n, n, device="cpu", BLOCK_SIZE=b)
    flex_mask.token_rows = token.any(dim=1)           # (n,) queries with at least one key
    return flex_mask


def flex_block_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, flex_mask, *,
                         compiled: bool = True, scale: float | None = None) -> torch.Tensor:
    """The same function through FlexAttention: ``q, k, v (B, H, N, D)`` and a
    :func:`flex_block_mask`. ``compiled=False`` runs FlexAttention's unfused reference (for
    tests: no compile time)."""
    from torch.nn.attention.flex_attention import flex_attention

    n = _check_qkv(q, k, v)
    if q.dim() != 4:
        raise ValueError(f"FlexAttention needs (B, H, N, D) tensors (got {tuple(q.shape)})")
    rows = getattr(flex_mask, "token_rows", None)
    if rows is None or rows.shape != (n,):
        raise ValueError(f"flex_mask must come from flex_block_mask(..., n={n})")
    fn = _compiled_flex() if compiled else flex_attention
    out = fn(q, k, v, block_mask=flex_mask, scale=scale)
    # a query with no key: FlexAttention leaves 0 there already; the convention made explicit
    return out * rows[:, None].to(out.dtype)
