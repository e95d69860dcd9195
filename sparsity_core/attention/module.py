"""A fixed sparse pattern in TinyGPT's attention slot.

:class:`PatternAttention` is TinyGPT's multi-head attention with the causal mask replaced by
any boolean pattern of :mod:`~sparsity_core.attention.patterns`: Sparse Transformers' strided
or fixed union ("merged heads", child2019generating Sec. 4.3), a window, BigBird's window +
global + random blocks (zaheer2020big, not causal: the model becomes an encoder), or one
pattern per head. The fast path is PyTorch's ``scaled_dot_product_attention`` with a boolean
``attn_mask``; the explicit path (taken when a hook wants ``hook_attn_probs``, or
``explicit=True``) is :func:`~sparsity_core.attention.reference.masked_softmax`, and the two
agree (tested). The pattern only removes entries: the cost on CPU is that of dense attention;
:mod:`~sparsity_core.attention.block_sparse` is where skipped blocks save time.

Taught in: Chapter 6, "Sparse attention".
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models.tinygpt import CausalSelfAttention, TinyGPTConfig
from .reference import masked_softmax

__all__ = ["PatternAttention", "pattern_attention"]


class PatternAttention(CausalSelfAttention):
    """Multi-head self-attention restricted to ``mask``: ``softmax(QK^T / sqrt(hs) + M) V`` with
    ``M = 0`` where ``mask`` is True and ``-inf`` elsewhere.

    Args:
        config: the model's :class:`~sparsity_core.models.TinyGPTConfig`.
        layer_index: position of the block (unused; factory signature).
        mask: ``(n, n)`` (every head) or ``(n_head, n, n)`` (one pattern per head) bool, True =
            query ``i`` attends to key ``j``, ``n >= block_size``; a sequence of length ``T``
            uses ``mask[..., :T, :T]``, in which every query must keep at least one key.
        explicit: always take the explicit path.

    Parameters, hook points and initialisation are :class:`~sparsity_core.models.CausalSelfAttention`'s.
    """

    def __init__(self, config: TinyGPTConfig, layer_index: int = 0, *, mask: torch.Tensor,
                 explicit: bool = False):
        super().__init__(config, layer_index, explicit=explicit)
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a bool tensor (True = attend)")
        n = config.block_size
        if mask.dim() not in (2, 3) or mask.shape[-1] != mask.shape[-2] or mask.shape[-1] < n \
                or (mask.dim() == 3 and mask.shape[0] != config.n_head):
            raise ValueError(f"mask must be (n, n) or ({config.n_head}, n, n) with n >= block_size={n} "
                             f"(got {tuple(mask.shape)})")
        if not bool(mask[..., :n, :n].any(dim=-1).all()):
            raise ValueError("every query must keep at least one key (a row of the mask is all False)")
        self.register_buffer("mask", mask.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)                            # 3 x (B, T, C)
        q = self.hook_q(q.view(B, T, self.n_head, hs).transpose(1, 2))      # (B, nh, T, hs)
        k = self.hook_k(k.view(B, T, self.n_head, hs).transpose(1, 2))      # (B, nh, T, hs)
        v = self.hook_v(v.view(B, T, self.n_head, hs).transpose(1, 2))      # (B, nh, T, hs)
        mask = self.mask[..., :T, :T]                                       # (T, T) or (nh, T, T)
        if T < self.mask.shape[-1] and not bool(mask.any(dim=-1).all()):
            raise ValueError(f"at length {T} some query of the mask keeps no key")
        if self.probs_requested():
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)              # (B, nh, T, T)
            probs = self.hook_attn_probs(masked_softmax(scores, mask.expand_as(scores)))
            y = self.attn_dropout(probs) @ v                                # (B, nh, T, hs)
        else:
            p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))

    def extra_repr(self) -> str:
        return f"mask={tuple(self.mask.shape)}, density={float(self.mask.float().mean()):.3f}"


def pattern_attention(mask: torch.Tensor | Callable[[int], torch.Tensor]
                      ) -> Callable[[TinyGPTConfig, int], nn.Module]:
    """A TinyGPT ``attention`` factory: :class:`PatternAttention` with ``mask`` in every block,
    or ``mask(layer_index)`` when it is a callable (a pattern per layer, e.g. Sparse
    Transformers' interleaved heads).

    Example::

        model = TinyGPT(cfg, attention=pattern_attention(strided_mask(cfg.block_size, 16)))
    """
    if not callable(mask) and not isinstance(mask, torch.Tensor):
        raise TypeError("mask must be a bool tensor or a callable layer_index -> bool tensor")

    def factory(config: TinyGPTConfig, layer_index: int) -> nn.Module:
        m = mask(layer_index) if callable(mask) else mask
        return PatternAttention(config, layer_index, mask=m)
    return factory
