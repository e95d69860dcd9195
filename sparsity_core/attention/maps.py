"""Real attention maps: how sparse they are, and how much of them a cheap selector recovers.

Every selector here keeps about ``k`` keys per query and is scored by the **attention mass it
covers** (:func:`mass_recall`): for a head's probabilities ``P`` and a kept set ``S_i`` per
query, :math:`\\frac1n \\sum_i \\sum_{j \\in S_i} P_{ij}`, 1 for a selector that keeps every key
with weight (the metric of MInference, jiang2024minference, and of the dynamic-sparsity papers
after it). The selectors:

* **oracle** (:func:`~sparsity_core.attention.patterns.topk_mask` of the true scores): the best
  any selector of ``k`` keys per query can do;
* **A-shape** (StreamingLLM's sinks + window, xiao2024efficient): the first ``sink`` keys and the
  ``k - sink`` most recent ones, the same for every head and input;
* **vertical-slash** (jiang2024minference, Sec. 3 and ``minference_forward.py``): from the exact
  attention of a few probe queries (the last ``probe`` ones in a causal model), the key columns
  and diagonals that hold the most mass; half the budget each (:func:`vertical_slash_estimate`);
* **block top-k** (MInference's block-sparse pattern, SpargeAttn's first stage, NSA's selection):
  mean-pool queries and keys over blocks of ``block`` tokens, score block pairs, keep the
  ``k / block`` best key blocks per query block (:func:`block_topk_estimate`);
* **Loki** (singhania2024loki): scores in the top principal directions of the keys
  (:func:`~sparsity_core.attention.estimators.loki_mask`);
* **random blocks**: the control, as many key blocks per query block as block top-k, drawn at random.

Two statistics of a model's heads: :func:`explained_rank` (how many principal directions of the
keys hold 90 % of their variance, Loki's Fig. 1), and :func:`topk_jaccard` (how much two layers'
top-k sets agree, TidalDecode's observation, yang2024tidaldecode).

Shapes: ``probs``, ``scores`` and masks ``(H, n, n)`` (heads of one sequence); ``q``, ``k`` ``(H, n, D)``.

Taught in: Chapter 6, "Sparse attention".
"""
from __future__ import annotations

import math

import torch

from .. import checks
from .patterns import a_shape_mask, block_topk_mask, causal_mask, expand_blocks, topk_mask, vertical_slash_mask

__all__ = ["mass_recall", "oracle_estimate", "a_shape_estimate", "vertical_slash_estimate", "block_topk_estimate",
           "random_block_estimate", "explained_rank", "topk_jaccard", "jaccard_expectation", "mean_density"]


def _heads(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != x.shape[-2] or x.shape[-1] == 0:
        raise ValueError(f"{name} must be a (H, n, n) tensor")
    return x


def mass_recall(probs: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``(H,)``: the attention mass ``keep`` covers per head, averaged over queries.

    ``probs (H, n, n)`` rows sum to 1; ``keep`` bool, broadcastable to it."""
    probs = _heads(probs, "probs")
    if not isinstance(keep, torch.Tensor) or keep.dtype != torch.bool:
        raise TypeError("keep must be a bool mask")
    return (probs * torch.broadcast_to(keep, probs.shape)).sum(dim=-1).mean(dim=-1)


def mean_density(keep: torch.Tensor, *, causal: bool) -> float:
    """Kept entries over those of dense attention (causal: ``n (n + 1) / 2`` per head)."""
    n = keep.shape[-1]
    heads = keep[None] if keep.dim() == 2 else keep
    total = heads.shape[0] * (n * (n + 1) // 2 if causal else n * n)
    return int(heads.sum()) / total


def _allowed(n: int, causal: bool) -> torch.Tensor | None:
    return causal_mask(n) if causal else None


def oracle_estimate(scores: torch.Tensor, k: int, *, causal: bool) -> torch.Tensor:
    """``(H, n, n)``: each query's ``k`` highest-scoring keys (causal: among ``j <= i``)."""
    scores = _heads(scores, "scores")
    return topk_mask(scores, k, _allowed(scores.shape[-1], causal))


def a_shape_estimate(n: int, k: int, *, sink: int = 4) -> torch.Tensor:
    """``(n, n)`` causal: ``sink`` first keys plus the ``k - sink`` most recent (``k > sink``)."""
    k = checks.integer(k, "k", lo=sink + 1)
    return a_shape_mask(n, sink, k - sink)


def vertical_slash_estimate(probs: torch.Tensor, k: int, *, probe: int = 64, causal: bool = True,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """``(H, n, n)``: per head, the ``k // 2`` key columns and ``k - k // 2`` diagonals (offsets
    ``i - j``) holding the most attention mass of ``probe`` probe queries.

    The probes are the last ``probe`` queries in a causal model (MInference's ``last_q``), and
    ``probe`` random queries (drawn from ``generator``) otherwise; only their rows of ``probs``
    are read. Non-causal heads score diagonals by ``|i - j|`` and keep both sides.
    """
    probs = _heads(probs, "probs")
    H, n, _ = probs.shape
    k = checks.integer(k, "k", lo=2, hi=n)
    probe = checks.integer(probe, "probe", lo=1, hi=n)
    rows = (torch.arange(n - probe, n) if causal
            else torch.randperm(n, generator=checks.generator(generator))[:probe].sort().values)
    p = probs[:, rows]                                                   # (H, probe, n)
    offsets = rows[:, None] - torch.arange(n)[None, :]                   # (probe, n) i - j
    offsets = offsets if causal else offsets.abs()
    keep = torch.zeros(H, n, n, dtype=torch.bool)
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    for h in range(H):
        col_mass = p[h].sum(dim=0)                                       # (n,)
        valid = offsets >= 0
        diag_mass = torch.zeros(n, dtype=p.dtype).index_add_(0, offsets[valid], p[h][valid])
        cols = col_mass.topk(k // 2).indices
        diags = diag_mass.topk(k - k // 2).indices
        if causal:
            keep[h] = vertical_slash_mask(n, cols, diags)
        else:
            d = torch.zeros(n, dtype=torch.bool)
            d[diags] = True
            c = torch.zeros(n, dtype=torch.bool)
            c[cols] = True
            keep[h] = c[None, :].expand(n, n) | d[(i - j).abs()]
    return keep


def _pool(x: torch.Tensor, block: int) -> torch.Tensor:
    """``(H, ceil(n / block), D)``: means over blocks of ``block`` rows (the last may be partial)."""
    H, n, D = x.shape
    nb = -(-n // block)
    pad = torch.zeros(H, nb * block - n, D, dtype=x.dtype)
    counts = torch.full((nb,), float(block), dtype=x.dtype)
    counts[-1] = n - (nb - 1) * block
    return torch.cat([x, pad], dim=1).view(H, nb, block, D).sum(dim=2) / counts[None, :, None]


def block_topk_estimate(q: torch.Tensor, k: torch.Tensor, budget: int, *, block: int = 16,
                        causal: bool = True) -> torch.Tensor:
    """``(H, n, n)``: per head, ``max(1, budget // block)`` key blocks per query block chosen by
    the mean-pooled scores :math:`\\bar q_a \\bar k_b^\\top`, expanded to tokens (and made causal)."""
    if not isinstance(q, torch.Tensor) or q.dim() != 3 or k.shape != q.shape:
        raise ValueError("q and k must be (H, n, D) tensors of one shape")
    H, n, _ = q.shape
    block = checks.positive_int(block, "block")
    nb = -(-n // block)
    per_row = min(nb, max(1, checks.positive_int(budget, "budget") // block))
    scores = _pool(q, block) @ _pool(k, block).transpose(-2, -1)           # (H, nb, nb)
    keep = torch.stack([expand_blocks(block_topk_mask(scores[h], per_row, causal=causal), block, n)
                        for h in range(H)])
    return keep & causal_mask(n) if causal else keep


def random_block_estimate(heads: int, n: int, budget: int, *, block: int = 16, causal: bool = True,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """``(heads, n, n)``: as :func:`block_topk_estimate` with random block scores (the control)."""
    nb = -(-n // block)
    gen = checks.generator(generator)
    per_row = min(nb, max(1, checks.positive_int(budget, "budget") // block))
    keep = torch.stack([expand_blocks(block_topk_mask(torch.rand(nb, nb, generator=gen), per_row, causal=causal),
                                      block, n) for _ in range(checks.positive_int(heads, "heads"))])
    return keep & causal_mask(n) if causal else keep


def explained_rank(x: torch.Tensor, threshold: float = 0.9) -> int:
    """The number of principal directions of the rows of ``x (N, D)`` (centred) whose variance
    first reaches ``threshold`` of the total: a 1-based count. Loki's ``plot_pca.py`` reports the
    0-based index ``argmax(cumsum > threshold)``, one less."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[0] < 2 or not x.is_floating_point():
        raise ValueError("x must be a float tensor (N, D) with N >= 2")
    t = checks.real(threshold, "threshold", lo=0.0, hi=1.0, closed_low=False)
    c = x.double() - x.double().mean(dim=0)
    var = torch.linalg.eigvalsh(c.T @ c).flip(0).clamp_min(0)
    frac = var.cumsum(0) / var.sum()
    return int((frac < t - 1e-12).sum()) + 1


def topk_jaccard(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(H,)``: the Jaccard index :math:`|A_i \\cap B_i| / |A_i \\cup B_i|` of two masks' kept
    sets per query, averaged over queries (rows with empty union count as 1)."""
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape \
            or a.dtype != torch.bool or b.dtype != torch.bool or a.dim() != 3:
        raise ValueError("a and b must be (H, n, n) bool masks of one shape")
    inter, union = (a & b).sum(dim=-1).double(), (a | b).sum(dim=-1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)).mean(dim=-1)


def jaccard_expectation(k: int, n: int) -> float:
    """The expected Jaccard index of two independent uniformly random ``k``-subsets of ``n``
    items: :math:`E|A\\cap B| = k^2/n`, so about :math:`(k^2/n) / (2k - k^2/n) = k / (2n - k)`
    (the ratio of expectations, TidalDecode's baseline in the targets file)."""
    k, n = checks.positive_int(k, "k"), checks.positive_int(n, "n")
    if k > n:
        raise ValueError(f"k = {k} exceeds n = {n}")
    return k / (2 * n - k)
