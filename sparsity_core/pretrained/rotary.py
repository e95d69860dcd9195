"""The queries and keys a Llama attention layer actually multiplies: after the rotary embedding,
with grouped key heads repeated to the query heads.

:func:`~sparsity_core.pretrained.collect.collect` reads ``q.i`` and ``k.i`` on the projections,
*before* the rotary position embedding (RoPE, su2024roformer). :func:`rotated_qk` applies the
model's own rotary embedding (``model.model.rotary_emb`` and ``transformers``'
``apply_rotary_pos_emb``) for positions ``0 .. T-1`` and repeats each of the ``Hkv`` key heads
for its ``H / Hkv`` query heads (grouped-query attention), so that
``softmax(q k^T / sqrt(Dh) + causal mask)`` is the layer's ``attn_probs`` (tested on a small
random Llama).

Taught in: Chapter 6, "Sparse attention" (Loki reads keys before and after the rotation,
singhania2024loki).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["rotated_qk"]


def rotated_qk(model: nn.Module, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
    """``(q_rot (B, H, T, Dh), k_rot (B, H, T, Dh))`` from pre-rotary ``q (B, H, T, Dh)`` and
    ``k (B, Hkv, T, Dh)`` of a Hugging Face Llama ``model`` (``LlamaForCausalLM`` or ``LlamaModel``)."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    if not isinstance(q, Tensor) or not isinstance(k, Tensor) or q.dim() != 4 or k.dim() != 4 \
            or q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:] or q.shape[1] % k.shape[1]:
        raise ValueError(f"q must be (B, H, T, Dh) and k (B, Hkv, T, Dh) with Hkv dividing H "
                         f"(got {tuple(getattr(q, 'shape', ()))}, {tuple(getattr(k, 'shape', ()))})")
    base = getattr(model, "model", model)
    rotary = getattr(base, "rotary_emb", None)
    if rotary is None:
        raise TypeError("model has no rotary embedding (model.model.rotary_emb): not a Llama")
    positions = torch.arange(q.shape[2], device=q.device)[None]          # (1, T)
    cos, sin = rotary(q, positions)
    q_rot, k_rot = apply_rotary_pos_emb(q, k, cos, sin)
    return q_rot, k_rot.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
