"""Checks of Chapter 6's exercises (see :mod:`sparsity_core.exercises`).

``06_sparse_attention`` ("Sparse attention, part 1: patterns, graphs and estimators"):

* ``strided_pattern``: Sparse Transformers' strided pattern, against
  :func:`sparsity_core.attention.strided_mask`;
* ``bigbird_window_global``: BigBird's window and global blocks, against
  :func:`sparsity_core.attention.bigbird_block_mask` with no random blocks;
* ``angular_lsh``: Reformer's angular LSH buckets, against :func:`sparsity_core.attention.lsh_buckets`.

``06_sparse_attention_real`` ("part 2: real attention maps"):

* ``covered_mass``: the attention mass a mask covers, against
  :func:`sparsity_core.attention.maps.mass_recall`;
* ``a_shape``: the A-shape (sink + window) mask, against :func:`sparsity_core.attention.a_shape_mask`;
* ``rank_at``: the principal directions holding 90 % of the keys' variance, against
  :func:`sparsity_core.attention.maps.explained_rank`.

``06_sparse_attention_trained`` ("part 3: training with fixed patterns"):

* ``floor``: the column walk's entropy floor, against
  :func:`sparsity_core.data.synthetic.column_walk_entropy`;
* ``layers_from``: the layers a key needs to reach every query, and ``reach_after``: what a
  query can depend on after ``L`` layers, both against :func:`sparsity_core.attention.hop_distance`.

``06_sparse_attention_nsa`` ("part 4: natively trained sparse attention"):

* ``mean_compress``: mean-pooled compression blocks, against :func:`sparsity_core.attention.compress`;
* ``select_blocks``: a query's selection blocks, against :func:`sparsity_core.attention.selection_mask`.
"""
from __future__ import annotations

import torch

from ..attention import (NSAConfig, a_shape_mask, bigbird_block_mask, causal_mask, compress, compression_starts,
                         expand_blocks, fixed_mask, hop_distance, local_mask, lsh_buckets, selection_mask,
                         strided_mask)
from ..attention.maps import explained_rank, mass_recall
from ..data.synthetic import column_walk_entropy
from .check import Case, Exercise, run_check

__all__ = ["EXERCISES",
           "check_strided_pattern", "check_bigbird_window_global", "check_angular_lsh",
           "check_covered_mass", "check_a_shape", "check_rank_at",
           "check_floor", "check_layers_from", "check_reach_after",
           "check_mean_compress", "check_select_blocks"]


# =========================================================================== 06_sparse_attention
def _strided_cases() -> list[Case]:
    return [
        Case("n = 10, stride 3", (10, 3)),
        Case("n = 33, stride 5 (n not a multiple of the stride)", (33, 5)),
        Case("n = 20, stride 40 (longer than the sequence: the band alone)", (20, 40)),
        Case("n = 12, stride 1 (every earlier key: dense causal)", (12, 1)),
        Case("a single token, stride 1", (1, 1)),
    ]


STRIDED_PATTERN = Exercise(
    name="strided_pattern", chapter="06_sparse_attention",
    task="the strided pattern: band of l keys plus every l-th key, causal",
    reference=strided_mask, cases=_strided_cases)


def check_strided_pattern(student_fn) -> str:
    """Check ``strided_pattern(n, l)`` against :func:`sparsity_core.attention.strided_mask`.

    Returns the ``(n, n)`` bool mask (True: query ``i`` attends to key ``j``) of the union of
    the strided pattern's two heads: ``j <= i`` and (``i - j <= l`` or ``(i - j) % l == 0``).
    child2019generating (Sparse Transformers); taught in Chapter 6, section 6.1
    ("Factorised patterns", ``06_sparse_attention``).
    """
    return run_check(STRIDED_PATTERN, student_fn)


def _bigbird_reference(n_blocks: int) -> torch.Tensor:
    return bigbird_block_mask(n_blocks, 0)


def _bigbird_cases() -> list[Case]:
    return [
        Case("3 blocks (the fewest BigBird allows: everything is global or window)", (3,)),
        Case("4 blocks", (4,)),
        Case("7 blocks", (7,)),
        Case("33 blocks", (33,)),
    ]


BIGBIRD_WINDOW_GLOBAL = Exercise(
    name="bigbird_window_global", chapter="06_sparse_attention",
    task="BigBird's block mask without random blocks: window of 3 and global first and last blocks",
    reference=_bigbird_reference, cases=_bigbird_cases)


def check_bigbird_window_global(student_fn) -> str:
    """Check ``bigbird_window_global(n_blocks)`` against
    :func:`sparsity_core.attention.bigbird_block_mask` with ``num_rand = 0``.

    Returns the ``(n_blocks, n_blocks)`` bool block mask: every query block sees blocks
    ``q - 1, q, q + 1``, and the first and last blocks are global (their rows and columns all
    True). zaheer2020big (BigBird, ITC); taught in Chapter 6, section 6.2 (``06_sparse_attention``).
    """
    return run_check(BIGBIRD_WINDOW_GLOBAL, student_fn)


def _lsh_reference(x: torch.Tensor, n_buckets: int, generator: torch.Generator) -> torch.Tensor:
    return lsh_buckets(x, n_buckets, generator=generator)


def _lsh_cases() -> list[Case]:
    g = torch.Generator().manual_seed(6)
    x100 = torch.randn(100, 16, generator=g)
    return [
        Case("100 vectors of 16 dimensions, 8 buckets", (x100, 8, torch.Generator().manual_seed(5))),
        Case("100 vectors of 16 dimensions, 2 buckets (one random hyperplane)",
             (x100, 2, torch.Generator().manual_seed(5))),
        Case("7 vectors of 3 dimensions, 64 buckets (more buckets than vectors)",
             (torch.randn(7, 3, generator=g), 64, torch.Generator().manual_seed(11))),
        Case("20 float64 vectors of 5 dimensions, 6 buckets (R drawn in float64)",
             (torch.randn(20, 5, generator=g, dtype=torch.float64), 6, torch.Generator().manual_seed(12))),
    ]


ANGULAR_LSH = Exercise(
    name="angular_lsh", chapter="06_sparse_attention",
    task="Reformer's angular LSH: argmax of [xR, -xR]",
    reference=_lsh_reference, cases=_lsh_cases)


def check_angular_lsh(student_fn) -> str:
    """Check ``angular_lsh(x, n_buckets, generator)`` against :func:`sparsity_core.attention.lsh_buckets`.

    ``x`` ``(N, d)``; draw ``R`` ``(d, n_buckets / 2)`` with one ``torch.randn`` from
    ``generator`` in ``x``'s dtype and return the ``(N,)`` int64 buckets
    ``argmax([x R, -x R])`` (each caller gets a generator in the same state).
    kitaev2020reformer Sec. 2.2; an exercise of ``06_sparse_attention`` (Reformer's hashing, beside
    the chapter's content-based estimators).
    """
    return run_check(ANGULAR_LSH, student_fn)


# =========================================================================== 06_sparse_attention_real
def _covered_cases() -> list[Case]:
    g = torch.Generator().manual_seed(60)
    p1 = torch.randn(3, 20, 20, generator=g).softmax(-1)
    keep1 = torch.rand(3, 20, 20, generator=g) > 0.5
    scores = torch.randn(2, 9, 9, generator=g).masked_fill(~causal_mask(9), float("-inf"))
    p2 = scores.softmax(-1)
    keep2 = (a_shape_mask(9, 1, 3)[None].expand(2, 9, 9)).clone()
    p3 = torch.randn(4, 6, 6, generator=g).softmax(-1)
    return [
        Case("3 heads of 20 x 20 probabilities, a random half kept", (p1, keep1)),
        Case("2 causal heads of 9 tokens, the A-shape (1 sink, window 3) kept", (p2, keep2)),
        Case("4 heads of 6 tokens, nothing kept (mass 0)", (p3, torch.zeros(4, 6, 6, dtype=torch.bool))),
        Case("one head of one token, kept (mass 1)", (torch.ones(1, 1, 1), torch.ones(1, 1, 1, dtype=torch.bool))),
    ]


COVERED_MASS = Exercise(
    name="covered_mass", chapter="06_sparse_attention_real",
    task="attention mass a mask covers, per head, averaged over queries",
    reference=mass_recall, cases=_covered_cases)


def check_covered_mass(student_fn) -> str:
    """Check ``covered_mass(probs, keep)`` against :func:`sparsity_core.attention.maps.mass_recall`.

    ``probs`` ``(H, n, n)`` attention probabilities (rows sum to 1), ``keep`` ``(H, n, n)`` bool;
    returns ``(H,)``: the probability mass on the kept keys, summed over keys and averaged over
    queries. Taught in Chapter 6, sections 6.4 and 6.6 (``06_sparse_attention_real``).
    """
    return run_check(COVERED_MASS, student_fn)


def _a_shape_cases() -> list[Case]:
    return [
        Case("n = 10, 1 sink, window 3", (10, 1, 3)),
        Case("n = 32, 4 sinks, window 12", (32, 4, 12)),
        Case("n = 7, 2 sinks, window 9 (longer than the sequence: dense causal)", (7, 2, 9)),
        Case("n = 12, no sink, window 4 (the local band alone)", (12, 0, 4)),
        Case("a single token, 1 sink, window 1", (1, 1, 1)),
    ]


A_SHAPE = Exercise(
    name="a_shape", chapter="06_sparse_attention_real",
    task="the A-shape mask: attention sinks plus a local window, causal",
    reference=a_shape_mask, cases=_a_shape_cases)


def check_a_shape(student_fn) -> str:
    """Check ``a_shape(n, sink, window)`` against :func:`sparsity_core.attention.a_shape_mask`.

    Returns the ``(n, n)`` causal bool mask: key ``j`` is kept for query ``i`` when ``j <= i``
    and (``j < sink`` or ``i - j < window``). jiang2024minference (the A-shape); taught in
    Chapter 6, section 6.6 "Cheap selectors" (``06_sparse_attention_real``).
    """
    return run_check(A_SHAPE, student_fn)


def _rank_cases() -> list[Case]:
    g = torch.Generator().manual_seed(61)
    low = torch.randn(300, 3, generator=g) @ torch.randn(3, 24, generator=g) + 0.05 * torch.randn(300, 24, generator=g)
    scaled = torch.randn(200, 10, generator=g) * torch.logspace(0, -2, 10)
    return [
        Case("500 Gaussian rows of 16 dimensions (variance spread evenly)",
             (torch.randn(500, 16, generator=g),)),
        Case("300 rows of rank 3 plus a little noise, in 24 dimensions", (low,)),
        Case("200 rows whose 10 coordinates scale from 1 down to 0.01, threshold 0.5", (scaled,),
             {"threshold": 0.5}),
        Case("2 rows of 4 dimensions (one direction holds all the variance)",
             (torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.0, 1.0, 3.0, 1.0]]),)),
    ]


RANK_AT = Exercise(
    name="rank_at", chapter="06_sparse_attention_real",
    task="principal directions holding a share of the centred variance (1-based)",
    reference=explained_rank, cases=_rank_cases)


def check_rank_at(student_fn) -> str:
    """Check ``rank_at(x, threshold=0.9)`` against :func:`sparsity_core.attention.maps.explained_rank`.

    ``x`` ``(N, d)`` float (keys of one head); returns an int: the number of principal
    directions of the centred rows, in order of variance, whose cumulative share of the total
    variance first reaches ``threshold`` (Loki's index plus one). singhania2024loki; taught in
    Chapter 6, section 6.5 "Keys are low-rank" (``06_sparse_attention_real``).
    """
    return run_check(RANK_AT, student_fn)


# =========================================================================== 06_sparse_attention_trained
def _floor_cases() -> list[Case]:
    return [
        Case("2 x 2 images of 2 levels (every level is an edge level)", (2, 2)),
        Case("the chapter's 12 x 12 images of 16 levels", (12, 16)),
        Case("5 x 5 images of 3 levels", (5, 3)),
        Case("16 x 16 images of 256 levels", (16, 256)),
    ]


FLOOR = Exercise(
    name="floor", chapter="06_sparse_attention_trained",
    task="the column walk's entropy floor, nats per predicted pixel",
    reference=column_walk_entropy, cases=_floor_cases)


def check_floor(student_fn) -> str:
    """Check ``floor(side, levels)`` against :func:`sparsity_core.data.synthetic.column_walk_entropy`.

    Returns a float: the mean over the ``side**2 - 1`` predicted pixels of the column-walk images
    of :math:`H(\\text{pixel} \\mid \\text{pixels before it})` in nats (row 0: ``log levels``;
    below it an interior level moves to one of 3, an edge level stays with probability 2/3).
    Taught in Chapter 6, section 6.8 (the image task's floor, ``06_sparse_attention_trained``).
    """
    return run_check(FLOOR, student_fn)


def _graph_masks() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(62)
    random = (torch.rand(14, 14, generator=g) < 0.12) & ~torch.eye(14, dtype=torch.bool)
    return {"strided": strided_mask(16, 4), "fixed": fixed_mask(16, 4, 1), "local": local_mask(12, 2),
            "bigbird": expand_blocks(bigbird_block_mask(5, 1, generator=g), 3, 15), "random": random,
            "one": torch.ones(1, 1, dtype=torch.bool)}


def _layers_reference(mask: torch.Tensor, j: int) -> torch.Tensor:
    return hop_distance(mask)[:, j].contiguous()


def _layers_cases() -> list[Case]:
    m = _graph_masks()
    return [
        Case("the strided pattern, n = 16, stride 4, from key 0", (m["strided"], 0)),
        Case("BigBird's blocks (5 blocks of 3 tokens, 1 random), from key 7", (m["bigbird"], 7)),
        Case("a local window of 2 on 12 tokens, from key 3 (earlier queries never reached: inf)",
             (m["local"], 3)),
        Case("a random directed 14 x 14 mask (12 % of pairs, no diagonal), from key 5", (m["random"], 5)),
        Case("a single token", (m["one"], 0)),
    ]


LAYERS_FROM = Exercise(
    name="layers_from", chapter="06_sparse_attention_trained",
    task="fewest attention layers from one key to every query (breadth-first search)",
    reference=_layers_reference, cases=_layers_cases)


def check_layers_from(student_fn) -> str:
    """Check ``layers_from(mask, j)`` against :func:`sparsity_core.attention.hop_distance`.

    ``mask`` ``(n, n)`` bool (query ``i`` attends to key ``j``); returns ``(n,)`` float64: for
    each query, the fewest layers of the pattern that carry key ``j``'s information to it (0 at
    ``j`` itself, ``inf`` when no path exists), i.e. column ``j`` of ``hop_distance(mask)``.
    zaheer2020big's graph view of attention; taught in Chapter 6, section 6.9
    (``06_sparse_attention_trained``).
    """
    return run_check(LAYERS_FROM, student_fn)


def _reach_reference(mask: torch.Tensor, layers: int) -> torch.Tensor:
    return hop_distance(mask) <= layers


def _reach_cases() -> list[Case]:
    m = _graph_masks()
    return [
        Case("the fixed pattern, n = 16, stride 4, c = 1, after 2 layers", (m["fixed"], 2)),
        Case("the strided pattern, n = 16, stride 4, after 0 layers (each token itself)", (m["strided"], 0)),
        Case("a random directed 14 x 14 mask (12 % of pairs, no diagonal), after 3 layers", (m["random"], 3)),
        Case("a local window of 2 on 12 tokens, after 10 layers (one hop short of the far end)",
             (m["local"], 10)),
    ]


REACH_AFTER = Exercise(
    name="reach_after", chapter="06_sparse_attention_trained",
    task="which keys each query can depend on after L layers",
    reference=_reach_reference, cases=_reach_cases)


def check_reach_after(student_fn) -> str:
    """Check ``reach_after(mask, layers)`` against :func:`sparsity_core.attention.hop_distance`.

    ``mask`` ``(n, n)`` bool, ``layers >= 0``; returns ``(n, n)`` bool: True where query ``i``
    can depend on key ``j`` after ``layers`` layers of the pattern (a path of at most that many
    attention steps, each token always keeping itself), i.e. ``hop_distance(mask) <= layers``.
    Taught in Chapter 6, sections 6.8-6.9 (``06_sparse_attention_trained``).
    """
    return run_check(REACH_AFTER, student_fn)


# =========================================================================== 06_sparse_attention_nsa
def _mean_compress_reference(x: torch.Tensor, l: int, d: int) -> torch.Tensor:
    return compress(x, l, d, lambda blocks: blocks.mean(dim=-2))


def _mean_compress_cases() -> list[Case]:
    g = torch.Generator().manual_seed(63)
    return [
        Case("x of shape (2, 3, 32, 5), blocks of 8 every 4 tokens", (torch.randn(2, 3, 32, 5, generator=g), 8, 4)),
        Case("x of shape (2, 37, 5), blocks of 16 every 8 (the last 5 tokens fit no block)",
             (torch.randn(2, 37, 5, generator=g), 16, 8)),
        Case("x of shape (16, 3): one block of 16", (torch.randn(16, 3, generator=g), 16, 16)),
        Case("x of shape (1, 20, 4), blocks of 4 at every token (stride 1)",
             (torch.randn(1, 20, 4, generator=g), 4, 1)),
    ]


MEAN_COMPRESS = Exercise(
    name="mean_compress", chapter="06_sparse_attention_nsa",
    task="NSA's compression blocks, mean-pooled",
    reference=_mean_compress_reference, cases=_mean_compress_cases)


def check_mean_compress(student_fn) -> str:
    """Check ``mean_compress(x, l, d)`` against :func:`sparsity_core.attention.compress` with a mean.

    ``x`` ``(*, T, D)``; returns ``(*, nc, D)``: the mean of ``x[..., i*d : i*d + l, :]`` for every
    block ``i`` that fits in ``T`` tokens. yuan2025native (NSA, Eq. 7 with mean pooling as
    :math:`\\varphi`); taught in Chapter 6, section 6.10 (``06_sparse_attention_nsa``).
    """
    return run_check(MEAN_COMPRESS, student_fn)


def _select_reference(p: torch.Tensor, t: int, cfg: NSAConfig) -> list[int]:
    """Row ``t`` of :func:`selection_mask` for compression probabilities whose row ``t`` is ``p``,
    read back as block indices. ``T`` is the shortest sequence longer than ``t`` with ``len(p)``
    compression blocks: the selection of query ``t`` does not depend on later tokens."""
    T = t + 1
    while compression_starts(T, cfg.cmp_block, cfg.cmp_stride).numel() < len(p):
        T += 1
    if compression_starts(T, cfg.cmp_block, cfg.cmp_stride).numel() != len(p):
        raise ValueError(f"no sequence longer than t = {t} has {len(p)} compression blocks")
    p_cmp = torch.zeros(T, len(p), dtype=p.dtype)
    p_cmp[t] = p
    row = selection_mask(p_cmp, T, cfg)[t]
    return sorted({int(j) // cfg.sel_block for j in torch.nonzero(row).flatten()})


def _select_cases() -> list[Case]:
    g = torch.Generator().manual_seed(64)

    def row(T, t, cfg):
        """Row ``t`` of random compression probabilities over ``T`` tokens (0 on the blocks that
        end after ``t``, the rest summing to 1, as the chapter's)."""
        starts = compression_starts(T, cfg.cmp_block, cfg.cmp_stride)
        p = torch.rand(len(starts), generator=g) * (starts + cfg.cmp_block - 1 <= t)
        return (p / p.sum() if p.sum() > 0 else p), t, cfg

    small = NSAConfig(cmp_block=4, cmp_stride=2, sel_block=4, n_select=3, window=4)
    wide = NSAConfig(cmp_block=8, cmp_stride=4, sel_block=8, n_select=3, window=8)
    odd = NSAConfig(cmp_block=6, cmp_stride=3, sel_block=8, n_select=4, window=8)
    many = NSAConfig(cmp_block=4, cmp_stride=4, sel_block=8, n_select=16, window=4)
    return [
        Case("T = 29, blocks of 4 every 2, selection blocks of 4, n = 3, query t = 17", row(29, 17, small)),
        Case("T = 40, blocks of 8 every 4, selection blocks of 8, n = 3, the last query t = 39",
             row(40, 39, wide)),
        Case("T = 41, blocks of 6 every 3, selection blocks of 8 (not a multiple of the stride), "
             "n = 4, query t = 40", row(41, 40, odd)),
        Case("T = 30, n = 16 selected blocks but only 4 visible to query t = 25: all of them",
             row(30, 25, many)),
        Case("T = 29, the first query t = 0 (no compression block visible yet: only block 0)",
             row(29, 0, small)),
    ]


SELECT_BLOCKS = Exercise(
    name="select_blocks", chapter="06_sparse_attention_nsa",
    task="NSA's selection: forced initial and local blocks plus the top-scoring ones",
    reference=_select_reference, cases=_select_cases)


def check_select_blocks(student_fn) -> str:
    """Check ``select_blocks(p, t, cfg)`` against :func:`sparsity_core.attention.selection_mask`.

    ``p`` ``(nc,)`` is query ``t``'s compression attention probabilities (0 on blocks not yet
    visible), ``cfg`` an :class:`~sparsity_core.attention.NSAConfig`; returns the sorted list of
    selection-block indices the query attends to: blocks starting at or before ``t``, scored by
    the ``p`` of the compression blocks overlapping them; block 0 and the two local blocks
    (``t // l'`` and the one before) always, then the best-scoring others (ties to the lower
    block) up to ``n_select``. yuan2025native (NSA, Eqs. 8-11); taught in Chapter 6, section
    6.10 "The three branches in code" (``06_sparse_attention_nsa``).
    """
    return run_check(SELECT_BLOCKS, student_fn)


#: The chapter's checked exercises.
EXERCISES: tuple[Exercise, ...] = (
    STRIDED_PATTERN, BIGBIRD_WINDOW_GLOBAL, ANGULAR_LSH,
    COVERED_MASS, A_SHAPE, RANK_AT,
    FLOOR, LAYERS_FROM, REACH_AFTER,
    MEAN_COMPRESS, SELECT_BLOCKS,
)
