"""Checks of Chapter 0's exercises (``book/00_bench.ipynb``; see :mod:`sparsity_core.exercises`).

Checked:

* ``recall_from_ranks(rank, k)``: Recall@k from the 1-based ranks of the relevant documents,
  against :func:`sparsity_core.retrieval.recall_at_k`;
* ``input_norms(model, idx)``: Wanda's input-feature norms of ``blocks.0.mlp.c_fc``, against
  :class:`sparsity_core.calibration.CalibrationCollector`.

Not checked: ``uniform_logits`` (its solution reads the chapter's tokenizer ``tok``, a chapter
global, so it cannot run on its own).
"""
from __future__ import annotations

import numpy as np
import torch

from ..calibration import CalibrationCollector
from ..models import TinyGPT, TinyGPTConfig
from ..retrieval import recall_at_k
from .check import Case, Exercise, run_check

__all__ = ["EXERCISES", "check_recall_from_ranks", "check_input_norms"]

CHAPTER = "00_bench"


# --------------------------------------------------------------------------- recall_from_ranks
def _recall_reference(rank, k):
    """The package's Recall@k on a ranked list built to give these ranks (thin adapter).

    Query q's relevant document is document 0; its ranked list holds documents 1..K, with
    document 0 put at position ``rank[q]`` (1-based) when ``rank[q] > 0``.
    """
    rank = np.asarray(rank)
    Q = rank.shape[0]
    K = max(int(k), int(rank.max(initial=0)))
    ranked = np.tile(np.arange(1, K + 1, dtype=np.int64), (Q, 1))     # (Q, K), no document 0
    hit = np.flatnonzero(rank > 0)
    ranked[hit, rank[hit] - 1] = 0
    return recall_at_k(ranked, np.zeros(Q, dtype=np.int64), int(k))


def _recall_cases():
    rng = np.random.default_rng(0)
    mixed = rng.integers(0, 21, size=30)                               # 0 = not retrieved
    return [
        Case("30 queries with ranks 0..20 (0 = not retrieved), k = 10", (mixed, 10)),
        Case("the same 30 queries at k = 1", (mixed, 1)),
        Case("6 queries whose ranks sit on both sides of k = 3 (2, 3, 3, 4, 0, 1)",
             (np.array([2, 3, 3, 4, 0, 1]), 3)),
        Case("5 queries none of which retrieved its document (all ranks 0), k = 10",
             (np.zeros(5, dtype=np.int64), 10)),
        Case("a single query at rank 7, k = 7", (np.array([7]), 7)),
    ]


RECALL_FROM_RANKS = Exercise(
    name="recall_from_ranks", chapter=CHAPTER,
    task="Recall@k from 1-based ranks, 0 = not retrieved",
    reference=_recall_reference, cases=_recall_cases)


def check_recall_from_ranks(student_fn):
    """Check ``recall_from_ranks(rank, k)``: the fraction of queries whose relevant document
    is ranked within the top ``k``, from ``rank`` ``(Q,)`` int 1-based ranks (0 = not retrieved);
    a Python float.

    Compared with :func:`sparsity_core.retrieval.recall_at_k` (Recall@k with one relevant
    document per query, the known-item metric of the retrieval chapters). Taught in
    Chapter 0, "The bench" (the BM25 baseline's Recall@10).
    """
    return run_check(RECALL_FROM_RANKS, student_fn)


# --------------------------------------------------------------------------- input_norms
LAYER = "blocks.0.mlp.c_fc"


def _input_norms_reference(model, idx):
    """The collector's ``||X_j||_2`` of the inputs of ``blocks.0.mlp.c_fc`` over all B*T rows."""
    layer = model.get_submodule(LAYER)
    with CalibrationCollector(model, {LAYER: layer}, gram=False) as cal, torch.no_grad():
        model(idx)
    return cal.column_norms(LAYER)


def _tiny_gpt(seed: int, **config) -> TinyGPT:
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):    # the layers' default init draws from the global RNG first
        model = TinyGPT(TinyGPTConfig(**config), generator=g).eval()
    with torch.no_grad():       # non-trivial LayerNorm gains (and biases), so ln_2 matters
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1 + 0.5 * torch.randn(module.weight.shape, generator=g))
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=g))
    return model


def _input_norms_cases():
    g = torch.Generator().manual_seed(1)
    small = dict(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    return [
        Case("a 1-block TinyGPT (C = 8, V = 11) on a batch of 3 x 8 tokens",
             (_tiny_gpt(0, **small), torch.randint(0, 11, (3, 8), generator=g))),
        Case("a 2-block TinyGPT with biases (C = 12, 3 heads) on 2 x 5 tokens",
             (_tiny_gpt(1, vocab_size=13, block_size=6, n_layer=2, n_head=3, n_embd=12, bias=True),
              torch.randint(0, 13, (2, 5), generator=g))),
        Case("a 1-block TinyGPT on a single token (B = T = 1)",
             (_tiny_gpt(2, **small), torch.randint(0, 11, (1, 1), generator=g))),
    ]


INPUT_NORMS = Exercise(
    name="input_norms", chapter=CHAPTER,
    task="Wanda's input-feature norms of blocks.0.mlp.c_fc",
    reference=_input_norms_reference, cases=_input_norms_cases)


def check_input_norms(student_fn):
    """Check ``input_norms(model, idx)``: the ``(C,)`` norms ``||X_j||_2`` of the inputs to
    ``model.blocks[0].mlp.c_fc`` (the ``ln_2`` output, every one of the B*T positions a row)
    when ``model`` (a TinyGPT) runs on ``idx`` ``(B, T)``.

    Compared with :meth:`sparsity_core.calibration.CalibrationCollector.column_norms` (float64),
    the statistic Wanda (sun2024simple, Eq. 1) scores weights with. Taught in Chapter 0,
    "The bench" (the calibration collector), used in Chapter 3.
    """
    return run_check(INPUT_NORMS, student_fn)


#: The chapter's checked exercises.
EXERCISES: tuple[Exercise, ...] = (RECALL_FROM_RANKS, INPUT_NORMS)
