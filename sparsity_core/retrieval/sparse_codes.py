r"""Sparse codes of dense embeddings for retrieval: Contrastive Sparse Representation (CSR,
wen2025beyond).

CSR maps a frozen embedding :math:`x \in \mathbb{R}^d` to the code :math:`f \in
\mathbb{R}_{\ge 0}^n` of a TopK sparse autoencoder (``k`` of ``n`` latents active,
:class:`sparsity_core.sae.TopKSAE`) and scores a query and a document by
:math:`\langle f_q, f_d \rangle`, which costs :math:`|\mathrm{supp}(f_q) \cap \mathrm{supp}(f_d)|`
multiply-adds (:func:`overlap_cost`). Training adds a contrastive term on the codes to the
SAE's reconstruction loss:

.. math::

    \mathcal{L} = \underbrace{L(k) + \tfrac{1}{8} L(4k) + \beta\,L_{\text{aux}}}_{\text{Multi-TopK SAE with AuxK}}
      \; + \; \gamma\, \frac{1}{P} \sum_{i=1}^{P} -\log \frac{e^{\langle f_{q_i}, f_{d_i} \rangle}}
      {\sum_{j} e^{\langle f_{q_i}, f_{d_j} \rangle}},

the second term the in-batch ranking loss of (query, positive document) pairs
(:func:`sparsity_core.retrieval.splade.in_batch_loss`, dot product, scale 1). With
:math:`\gamma = 0` it is a plain SAE trained on the same batches, the ablation CSR is compared
with. :math:`\gamma` defaults to 1, as in sentence-transformers' ``CSRLoss``; :math:`\beta` is the
SAE's ``aux_coeff``, set when the SAE is built (``CSRLoss``: 0.1).

Reference code read: ``UKPLab/sentence-transformers``
``sentence_transformers/sparse_encoder/losses/CSRLoss.py`` (``CSRReconstructionLoss``: L(k) +
L(4k)/8 + beta * L_aux; ``CSRLoss``: + gamma * ranking loss) and
``SparseMultipleNegativesRankingLoss.py`` (in-batch negatives, dot product, scale 1).

Dimension letters: N corpus rows, P pairs per batch, d embedding width, n latents.

Taught in: Chapter 8, "Retrieval" (sparse codes of dense embeddings, a later part).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import checks
from ..sae.base import SAE
from ..sae.train import shuffled_batches
from ..training import History, fit
from .splade import in_batch_loss

__all__ = ["CSR_GAMMA", "csr_step_loss", "train_csr", "overlap_cost"]

#: Weight of the contrastive term (sentence-transformers' ``CSRLoss`` default).
CSR_GAMMA = 1.0


def csr_step_loss(sae: SAE, batch: tuple[Tensor, Tensor, Tensor], gamma: float) -> tuple[Tensor, dict[str, float]]:
    """One CSR step on ``(corpus (B, d), queries (P, d), positives (P, d))``: the SAE's
    :meth:`~sparsity_core.sae.base.SAE.training_step` on all ``B + 2P`` rows (its statistics
    change there, once) plus ``gamma`` times the in-batch ranking loss of the pairs' codes.

    Returns:
        ``(loss, logs)``: the SAE's logs and ``contrastive`` (unweighted).
    """
    corpus, queries, positives = batch
    if queries.shape != positives.shape:
        raise ValueError(f"queries and positives must have one shape (got {tuple(queries.shape)} and "
                         f"{tuple(positives.shape)})")
    out = sae.training_step(torch.cat([corpus, queries, positives]))
    p = queries.shape[0]
    contrastive = in_batch_loss(out.f[-2 * p:-p], out.f[-p:])
    logs = out.logs() | {"contrastive": float(contrastive.detach())}
    return out.loss + gamma * contrastive, logs


def train_csr(sae: SAE, corpus: Tensor, queries: Tensor, positives: Tensor, *, steps: int,
              batch_size: int = 256, pair_batch: int = 128, gamma: float = CSR_GAMMA, lr: float = 1e-3,
              generator: torch.Generator, progress: bool = True) -> History:
    """Train ``sae`` with the CSR loss (module docstring) for ``steps`` Adam steps.

    Each step draws ``batch_size`` rows of ``corpus (N, d)`` and ``pair_batch`` aligned rows of
    ``queries`` and ``positives (M, d)`` (both without replacement within an epoch). As
    :func:`sparsity_core.sae.train_sae`: ``b_dec`` starts at the geometric median of up to 4,096
    corpus rows, the decoder gradient loses its component along each column before the step, and
    the columns are renormalised after it.

    Args:
        sae: a :class:`~sparsity_core.sae.base.SAE` (CSR uses ``TopKSAE.multi_topk`` with AuxK).
        gamma: weight of the contrastive term (0: the SAE alone, on the same batches).

    Returns:
        The :class:`~sparsity_core.training.History` (per-step ``mse``, ``l0``, ``dead``, ``aux``,
        ``contrastive``).
    """
    if not isinstance(sae, SAE):
        raise TypeError(f"sae must be an SAE (got {type(sae).__name__})")
    for name, x in (("corpus", corpus), ("queries", queries), ("positives", positives)):
        sae.check_input(x)
    if queries.shape != positives.shape:
        raise ValueError(f"queries and positives must have one shape (got {tuple(queries.shape)} and "
                         f"{tuple(positives.shape)})")
    gamma = checks.real(gamma, "gamma", lo=0.0)
    pair_batch = checks.integer(pair_batch, "pair_batch", lo=2, hi=len(queries))
    sae.init_b_dec(corpus[torch.randperm(len(corpus), generator=generator)[:4096]])
    rows = shuffled_batches(corpus, batch_size, generator)
    pair_index = shuffled_batches(torch.arange(len(queries)), pair_batch, generator)

    def batch(step: int) -> tuple[Tensor, Tensor, Tensor]:
        i = pair_index(step)
        return rows(step), queries[i], positives[i]

    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    opt.register_step_pre_hook(lambda optimizer, args, kwargs: sae.project_decoder_grad_())
    return fit(sae, batch, steps=steps, optimizer=opt, loss_fn=lambda model, b: csr_step_loss(model, b, gamma),
               progress=progress, callbacks=[lambda i, model: model.post_step()],
               desc=f"CSR (gamma={gamma:g})" if gamma else f"{sae.kind} SAE on CSR batches")


def overlap_cost(f_q: Tensor, f_d: Tensor) -> Tensor:
    """``(Q, N)`` multiply-adds of each sparse inner product :math:`\\langle f_q, f_d \\rangle`:
    the latents active in both, for codes ``f_q (Q, n)`` and ``f_d (N, n)``."""
    if f_q.dim() != 2 or f_d.dim() != 2 or f_q.shape[1] != f_d.shape[1]:
        raise ValueError(f"f_q and f_d must be (Q, n) and (N, n) (got {tuple(f_q.shape)} and {tuple(f_d.shape)})")
    return (f_q != 0).float() @ (f_d != 0).float().T
