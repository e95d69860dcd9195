"""Every SAE variant by name: :func:`make_sae` and ``SAE_KINDS``.

The skeleton and the step output live in :mod:`sparsity_core.sae.base`; selection SAEs (TopK, BatchTopK,
Matryoshka) in :mod:`sparsity_core.sae.topk`; penalty SAEs (ReLU + L1, JumpReLU, Gated) in
:mod:`sparsity_core.sae.penalty`.

Taught in: Chapter 7, "Sparse autoencoders".
"""
from __future__ import annotations

from .base import SAE, SAEOutput, geometric_median
from .penalty import GatedSAE, JumpReLUSAE, ReLUSAE
from .topk import BatchTopKSAE, MatryoshkaSAE, TopKSAE

__all__ = ["SAE", "SAEOutput", "ReLUSAE", "TopKSAE", "BatchTopKSAE", "MatryoshkaSAE", "JumpReLUSAE",
           "GatedSAE", "make_sae", "SAE_KINDS", "geometric_median"]

SAE_KINDS: dict[str, type[SAE]] = {c.kind: c for c in (ReLUSAE, TopKSAE, BatchTopKSAE, MatryoshkaSAE,
                                                        JumpReLUSAE, GatedSAE)}


def make_sae(kind: str, d_in: int, n_latents: int, **kw) -> SAE:
    """An SAE by name: one of ``SAE_KINDS`` (``relu``, ``topk``, ``batchtopk``, ``matryoshka``,
    ``jumprelu``, ``gated``), or ``multi_topk``; ``kw`` go to the class."""
    if kind == "multi_topk":
        return TopKSAE.multi_topk(d_in, n_latents, **kw)
    if kind not in SAE_KINDS:
        raise ValueError(f"kind must be one of {sorted(SAE_KINDS) + ['multi_topk']} (got {kind!r})")
    return SAE_KINDS[kind](d_in, n_latents, **kw)
