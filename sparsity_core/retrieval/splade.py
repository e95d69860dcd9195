r"""Learned sparse representations in the style of SPLADE: a head over a frozen encoder's token
states whose outputs live in the vocabulary, the pooling that turns token logits into one
sparse vector, the regularisers that make it sparse, and inference-free queries.

For a text of :math:`L` tokens with states :math:`h_i` and a vocabulary embedding matrix
:math:`E` (tied to the encoder's word embeddings), the head gives token-vocabulary logits
:math:`w_{ij} = \mathrm{LN}(\mathrm{GELU}(W h_i))^\top E_j + b_j` and the text's weight on term
:math:`j` is (formal2021splade, Eq. 2 with the log saturation; formal2021spladev2, Eq. 3 for max)

.. math::

    \text{sum: } w_j = \sum_i \log(1 + \mathrm{ReLU}(w_{ij})), \qquad
    \text{max: } w_j = \max_i \log(1 + \mathrm{ReLU}(w_{ij})),

over the text's real tokens (padding masked). Sparsity comes from a regulariser on a batch of
:math:`B` representations :math:`w_{bj}`:

* FLOPS (paria2020minimizing): :math:`\sum_j \big(\tfrac1B \sum_b |w_{bj}|\big)^2`, which
  penalises dimensions that are active in many texts (long posting lists) quadratically;
* L1: :math:`\tfrac1B \sum_b \sum_j |w_{bj}|`.

Both are ramped up with :math:`\lambda_t = \lambda\, \min(1, t/T)^2` (paria2020minimizing's
schedule, SPLADE's ``RegWeightScheduler``). The cost of retrieval with an inverted index is
estimated as :math:`\mathrm{E[FLOPS]} = \sum_j p^q_j\, p^d_j`, with :math:`p_j` the share of queries
(documents) whose weight on term :math:`j` is non-zero (:func:`expected_flops`).

An **inference-free** query (geng2024towards) needs no encoder: its weight on term :math:`j` is
:math:`\mathrm{ReLU}(\mathrm{idf}_j)` if the query contains token :math:`j`, else 0
(:func:`idf_query`); only documents go through the head.

Reference code read: ``naver/splade`` ``splade/models/transformer_rep.py`` (``Splade.encode``:
log1p of ReLU, masked, max or sum), ``splade/losses/regularization.py`` (``FLOPS``, ``L1``,
``RegWeightScheduler``) and ``splade/flops.py`` (``estim_act_prob``).

Dimension letters: B texts, L tokens, H hidden size, V vocabulary (or the restricted vocabulary
the head scores).

Taught in: Chapter 8, "Retrieval" (learned sparse retrieval, part 2).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checks

__all__ = ["POOLINGS", "splade_pool", "flops_penalty", "l1_penalty", "mean_l0", "expected_flops",
           "regulariser_weight", "in_batch_loss", "SpladeHead", "idf_query"]

#: Pooling of token weights into one vector: SPLADE's sum and SPLADE-max's max.
POOLINGS = ("max", "sum")


def splade_pool(logits: torch.Tensor, attention_mask: torch.Tensor, pooling: str = "max") -> torch.Tensor:
    """One sparse vector per text from its token-vocabulary logits.

    Args:
        logits: ``(B, L, V)`` token-vocabulary logits :math:`w_{ij}`.
        attention_mask: ``(B, L)`` 1 (or True) for real tokens, 0 for padding.
        pooling: ``"max"`` or ``"sum"`` over tokens of :math:`\\log(1 + \\mathrm{ReLU}(w_{ij}))`.

    Returns:
        ``(B, V)`` non-negative weights; padding contributes nothing (for max too: every weight is
        >= 0, so a masked 0 never wins over a real token).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS} (got {pooling!r})")
    if logits.ndim != 3:
        raise ValueError(f"logits must be (B, L, V) (got shape {tuple(logits.shape)})")
    if attention_mask.shape != logits.shape[:2]:
        raise ValueError(f"attention_mask must be (B, L) = {tuple(logits.shape[:2])} (got {tuple(attention_mask.shape)})")
    weights = torch.log1p(torch.relu(logits)) * attention_mask.to(logits.dtype).unsqueeze(-1)
    return weights.amax(dim=1) if pooling == "max" else weights.sum(dim=1)


def _batch(reps: torch.Tensor) -> torch.Tensor:
    if reps.ndim != 2 or reps.shape[0] == 0:
        raise ValueError(f"reps must be a non-empty (B, V) batch (got shape {tuple(reps.shape)})")
    return reps


def flops_penalty(reps: torch.Tensor) -> torch.Tensor:
    """FLOPS regulariser of a ``(B, V)`` batch: :math:`\\sum_j (\\mathrm{mean}_b |w_{bj}|)^2` (scalar)."""
    return _batch(reps).abs().mean(dim=0).pow(2).sum()


def l1_penalty(reps: torch.Tensor) -> torch.Tensor:
    """L1 regulariser of a ``(B, V)`` batch: :math:`\\mathrm{mean}_b \\sum_j |w_{bj}|` (scalar)."""
    return _batch(reps).abs().sum(dim=1).mean()


def mean_l0(reps: torch.Tensor) -> torch.Tensor:
    """Mean number of non-zero weights per row of a ``(B, V)`` batch (scalar, float)."""
    return (_batch(reps) != 0).sum(dim=1).float().mean()


def expected_flops(query_reps: torch.Tensor, doc_reps: torch.Tensor) -> float:
    """:math:`\\sum_j p^q_j p^d_j`: the expected number of postings a query-document pair
    shares, with :math:`p_j` the share of rows of ``(Q, V)`` queries and ``(N, V)`` documents
    whose weight on term ``j`` is non-zero."""
    q, d = _batch(query_reps), _batch(doc_reps)
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"queries and documents differ in V ({q.shape[1]} vs {d.shape[1]})")
    return float(((q != 0).double().mean(dim=0) * (d != 0).double().mean(dim=0)).sum())


def in_batch_loss(query_reps: torch.Tensor, doc_reps: torch.Tensor) -> torch.Tensor:
    """Ranking loss with in-batch negatives (formal2021splade, Eq. 4): query ``b``'s positive is
    document ``b``, the batch's other documents are its negatives; the mean over queries of
    :math:`-\\log \\frac{e^{s(q_b, d_b)}}{\\sum_{b'} e^{s(q_b, d_{b'})}}` with :math:`s` the dot product.

    Args:
        query_reps: ``(B, V)``; doc_reps: ``(B, V)``, row ``b`` the positive of query ``b``.
    """
    q, d = _batch(query_reps), _batch(doc_reps)
    if q.shape != d.shape:
        raise ValueError(f"query_reps and doc_reps must both be (B, V) (got {tuple(q.shape)} and {tuple(d.shape)})")
    return F.cross_entropy(q @ d.T, torch.arange(q.shape[0]))


def regulariser_weight(lam: float, step: int, ramp_steps: int) -> float:
    """:math:`\\lambda \\min(1, t / T)^2` at step ``t`` (0-based) of a ramp of ``T`` steps."""
    lam = checks.real(lam, "lam", lo=0.0)
    step = checks.integer(step, "step", lo=0)
    ramp_steps = checks.integer(ramp_steps, "ramp_steps", lo=0)
    if ramp_steps == 0:
        return lam
    return lam * min(1.0, step / ramp_steps) ** 2


class SpladeHead(nn.Module):
    """Token states to vocabulary logits, :math:`\\mathrm{LN}(\\mathrm{GELU}(W h_i))^\\top E_j + b_j`,
    with ``E`` the encoder's word embeddings (tied, frozen: a buffer, not a parameter).

    Args:
        embeddings: ``(V, H)`` word embeddings (rows of the vocabulary the head scores, e.g. the
            tokens that occur in the corpus); copied, detached.

    Forward: ``(B, L, H)`` token states -> ``(B, L, V)`` logits.
    """

    def __init__(self, embeddings: torch.Tensor):
        super().__init__()
        if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2 or 0 in embeddings.shape:
            raise ValueError("embeddings must be a non-empty (V, H) tensor")
        vocab, hidden = embeddings.shape
        self.register_buffer("embeddings", embeddings.detach().clone().float())
        self.transform = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        if states.ndim != 3 or states.shape[-1] != self.embeddings.shape[1]:
            raise ValueError(f"states must be (B, L, {self.embeddings.shape[1]}) (got {tuple(states.shape)})")
        return self.norm(F.gelu(self.transform(states))) @ self.embeddings.T + self.bias


def idf_query(token_ids: torch.Tensor, attention_mask: torch.Tensor, idf: torch.Tensor,
              ignore: tuple[int, ...] = ()) -> torch.Tensor:
    """Inference-free query vectors: :math:`\\mathrm{ReLU}(\\mathrm{idf}_j)` on each vocabulary
    entry ``j`` the query contains (once, however often), 0 elsewhere.

    Args:
        token_ids: ``(B, L)`` vocabulary indices of the queries' tokens (in ``[0, V)``).
        attention_mask: ``(B, L)`` 1 for real tokens, 0 for padding.
        idf: ``(V,)`` term weights.
        ignore: vocabulary indices never weighted (special tokens: ``[CLS]``, ``[SEP]``, padding).

    Returns:
        ``(B, V)`` query weights.
    """
    if token_ids.ndim != 2 or attention_mask.shape != token_ids.shape:
        raise ValueError("token_ids and attention_mask must both be (B, L)")
    if idf.ndim != 1:
        raise ValueError(f"idf must be (V,) (got shape {tuple(idf.shape)})")
    vocab = idf.shape[0]
    if token_ids.numel() and (token_ids.min() < 0 or token_ids.max() >= vocab):
        raise ValueError(f"token_ids must lie in [0, {vocab - 1}]")
    bag = torch.zeros(token_ids.shape[0], vocab, dtype=idf.dtype)
    # 1 where a real token holds j (max: a padded position with the same id cannot erase it)
    bag.scatter_reduce_(1, token_ids.long(), attention_mask.to(idf.dtype), reduce="amax")
    if ignore:
        bag[:, list(ignore)] = 0
    return bag * torch.relu(idf)
