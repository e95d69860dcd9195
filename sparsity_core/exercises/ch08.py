"""Checks of Chapter 8's exercises (see :mod:`sparsity_core.exercises`).

* ``08_retrieval``, Exercise 1: ``my_pivot`` against :func:`sparsity_core.retrieval.pruning.wand_pivot`.
* ``08_retrieval``, Exercise 2: ``quantise`` against the posting lists of
  :class:`sparsity_core.retrieval.pruning.ImpactIndex`.
* ``08_retrieval``, Exercise 3: ``range_bounds`` against ``ImpactIndex.range_max``.
* ``08_retrieval_encodings``, Exercise 1: ``margin`` against
  :func:`sparsity_core.retrieval.margin.normalized_margin`.
* ``08_retrieval_encodings``, Exercise 2: ``chamfer_loop`` against
  :func:`sparsity_core.retrieval.muvera.chamfer`.
* ``08_retrieval_sparse_codes``, Exercise 1: ``overlap_loop`` against
  :func:`sparsity_core.retrieval.sparse_codes.overlap_cost`.
* ``08_retrieval_sparse_codes``, Exercise 2: ``ranking_loss_loop`` against
  :func:`sparsity_core.retrieval.splade.in_batch_loss`.

Not checked: ``simulated_swap_rate`` (a Monte Carlo estimate, compared with a formula only within
sampling error) and ``pca_truncate`` (the package has no PCA truncation, and the axes' signs are
arbitrary).

``my_pivot`` is checked only on cursors that have a pivot: :func:`~.check.run_check` reads a
``None`` output as an unwritten stub, so the "no pivot" answer cannot be compared.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..retrieval.margin import normalized_margin
from ..retrieval.muvera import chamfer
from ..retrieval.pruning import ImpactIndex, wand_pivot
from ..retrieval.sparse_codes import overlap_cost
from ..retrieval.splade import in_batch_loss
from .check import Case, Exercise, run_check

__all__ = ["EXERCISES", "check_my_pivot", "check_quantise", "check_range_bounds", "check_margin",
           "check_chamfer_loop", "check_overlap_loop", "check_ranking_loss_loop"]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------ 08_retrieval, Exercise 1: WAND's pivot

def _pivot_reference(docs, bounds, threshold):
    return wand_pivot(docs, bounds, threshold)


def _pivot_cases() -> list[Case]:
    rng = _rng(1)
    docs = sorted(rng.integers(0, 100, size=7).tolist())
    bounds = rng.integers(1, 20, size=7).tolist()
    return [
        Case(f"7 cursors on documents {docs}, bounds {bounds}, threshold 30", (docs, bounds, 30)),
        Case("3 cursors, bounds [5, 7, 4], threshold 12: the running sum reaches 12 exactly at the "
             "second cursor and exceeds it only at the third", ([4, 9, 9], [5, 7, 4], 12)),
        Case("4 cursors, threshold -1 (fewer than k documents held yet): the first cursor is the pivot",
             ([2, 3, 3, 50], [1, 6, 2, 8], -1)),
        Case("a single cursor whose bound 9 exceeds the threshold 8", ([17], [9], 8)),
        Case("5 cursors, three on one document, bounds [0, 0, 3, 2, 6], threshold 4",
             ([1, 8, 8, 8, 12], [0, 0, 3, 2, 6], 4)),
    ]


MY_PIVOT = Exercise(
    name="my_pivot", chapter="08_retrieval",
    task="WAND's pivot: the first cursor where the summed bounds exceed the threshold",
    reference=_pivot_reference, cases=_pivot_cases)


def check_my_pivot(student_fn) -> str:
    """Check ``my_pivot(docs, bounds, threshold)``: with the cursors sorted by their current
    document (``docs``, a list of ints) and their upper bounds (``bounds``, ints), the index (an
    int) of the first cursor at which the running sum of bounds exceeds ``threshold`` (strictly),
    or ``None`` when none does (broder2003efficient). Compared with
    :func:`sparsity_core.retrieval.pruning.wand_pivot` on cursors that have a pivot; taught in
    Chapter 8 (``08_retrieval``, 8.2, WAND; Exercise 1)."""
    return run_check(MY_PIVOT, student_fn)


# ------------------------------------------------------- 08_retrieval, Exercise 2: impact quantisation

def _quantise_reference(weights_col, w_max, bits):
    # The index quantises against its largest weight: a second column holding w_max alone makes
    # that w_max (the exercise's w_max is the largest weight of the whole index, >= the column's).
    col = sp.csc_array(weights_col, dtype=np.float64)
    spike = sp.csc_array((np.array([float(w_max)]), (np.array([0]), np.array([0]))), shape=(col.shape[0], 1))
    index = ImpactIndex(sp.hstack([col, spike], format="csc"), bits=bits)
    return index.docs[0], index.impacts[0]


def _column(n: int, nnz: int, seed: int, scale: float = 1.0) -> sp.csc_array:
    rng = _rng(seed)
    rows = np.sort(rng.choice(n, size=nnz, replace=False))
    return sp.csc_array((rng.uniform(0.0, scale, size=nnz), (rows, np.zeros(nnz, dtype=np.int64))), shape=(n, 1))


def _quantise_cases() -> list[Case]:
    col = _column(40, 15, seed=2, scale=3.0)
    small = _column(60, 20, seed=3, scale=0.05)                  # a rare term's small weights
    # a column whose indices are stored out of order (the postings must come out by document)
    unsorted = sp.csc_matrix((np.array([0.9, 2.4, 0.003, 1.7, 3.1]), np.array([12, 3, 7, 0, 9]), np.array([0, 5])),
                             shape=(15, 1))
    return [
        Case("a column of 15 weights in 40 documents, w_max = 4.0, 8 bits", (col, 4.0, 8)),
        Case("a column of 20 small weights (below 0.05) in 60 documents, w_max = 6.5, 8 bits "
             "(most round to 0 and are dropped)", (small, 6.5, 8)),
        Case("a column of 5 weights stored with its document indices out of order, w_max = 3.1 "
             "(its own largest), 4 bits", (unsorted, 3.1, 4)),
        Case("the first column again at 1 bit (only weights of at least w_max / 2 survive, as impact 1)",
             (col, 4.0, 1)),
        Case("an empty column (the term occurs nowhere), w_max = 2.0, 8 bits",
             (sp.csc_array((10, 1), dtype=np.float64), 2.0, 8)),
    ]


QUANTISE = Exercise(
    name="quantise", chapter="08_retrieval", task="a term's postings quantised to integer impacts",
    reference=_quantise_reference, cases=_quantise_cases)


def check_quantise(student_fn) -> str:
    """Check ``quantise(weights_col, w_max, bits)``: for one term's weights as a scipy sparse
    ``(N, 1)`` column, the impacts ``round(w / w_max * (2**bits - 1))`` (NumPy's ``np.rint``)
    with the postings that round to 0 dropped, returned as ``(docs, impacts)``, two int64 arrays
    with the documents increasing (anh2001vector). Compared with the posting lists of
    :class:`sparsity_core.retrieval.pruning.ImpactIndex`; taught in Chapter 8 (``08_retrieval``,
    8.1, the impact-quantised index; Exercise 2)."""
    return run_check(QUANTISE, student_fn)


# ------------------------------------------------- 08_retrieval, Exercise 3: Block-Max Pruning bounds

def _range_bounds_reference(index, query):
    terms = list(query)
    if not terms:
        return np.zeros(index.range_max.shape[0], dtype=np.int64)
    weights = np.array([query[t] for t in terms], dtype=np.int64)
    return np.asarray(index.range_max[:, terms] @ weights).astype(np.int64)


def _weights(n_docs: int, n_terms: int, density: float, seed: int) -> sp.csc_array:
    rng = _rng(seed)
    w = sp.random_array((n_docs, n_terms), density=density, format="csc", rng=rng,
                        data_sampler=lambda size: rng.uniform(0.01, 5.0, size=size))
    return sp.csc_array(w)


def _range_bounds_cases() -> list[Case]:
    w = _weights(50, 12, 0.2, seed=4)
    w_gap = w.tolil()
    w_gap[:, 5] = 0.0                                           # term 5 occurs nowhere
    w_gap = sp.csc_array(w_gap)
    return [
        Case("50 documents, 12 terms, ranges of 8 documents (the last range holds 2), query {1: 1, 4: 2, 9: 1}",
             (ImpactIndex(w, doc_block=8), {1: 1, 4: 2, 9: 1})),
        Case("the same documents with term 5 absent from every one, query {5: 3, 0: 1, 11: 2}",
             (ImpactIndex(w_gap, doc_block=8), {5: 3, 0: 1, 11: 2})),
        Case("ranges of a single document, query {2: 1, 3: 1, 7: 4}",
             (ImpactIndex(w, doc_block=1), {2: 1, 3: 1, 7: 4})),
        Case("one range wider than the 50 documents (doc_block 64), query {6: 2}",
             (ImpactIndex(w, doc_block=64), {6: 2})),
        Case("200 documents, 30 terms at 6-bit impacts, ranges of 16, query {3: 1, 8: 1, 17: 2, 29: 1}",
             (ImpactIndex(_weights(200, 30, 0.05, seed=5), bits=6, doc_block=16), {3: 1, 8: 1, 17: 2, 29: 1})),
    ]


RANGE_BOUNDS = Exercise(
    name="range_bounds", chapter="08_retrieval", task="each document range's upper bound for a query",
    reference=_range_bounds_reference, cases=_range_bounds_cases)


def check_range_bounds(student_fn) -> str:
    """Check ``range_bounds(index, query)``: for an :class:`~sparsity_core.retrieval.pruning.ImpactIndex`
    and a query ``{term: integer weight}``, Block-Max Pruning's bound of each range of
    ``index.doc_block`` documents, :math:`\\sum_t q_t \\max_{d \\in \\text{range}}
    \\mathrm{impact}_{t,d}`, computed from the posting lists (``index.docs[t]``,
    ``index.impacts[t]``) and returned as an ``(n_ranges,)`` int64 array (mallia2024faster).
    Compared with the index's ``range_max``; taught in Chapter 8 (``08_retrieval``, 8.1-8.2,
    Block-Max Pruning; Exercise 3)."""
    return run_check(RANGE_BOUNDS, student_fn)


# ------------------------------------------ 08_retrieval_encodings, Exercise 1: the normalised margin

def _margin_reference(q, d1, d2):
    return float(normalized_margin(q[None, :], d1[None, :], d2[None, :])[0])


def _sparse_vector(v: int, nnz: int, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros(v)
    x[rng.choice(v, size=nnz, replace=False)] = rng.uniform(0.1, 3.0, size=nnz)
    return x


def _margin_cases() -> list[Case]:
    rng = _rng(6)
    q, d1, d2 = (_sparse_vector(30, n, rng) for n in (4, 9, 12))
    d1[np.flatnonzero(q)[:2]] += 1.5                          # the gold document shares query terms
    rng2 = _rng(7)
    dense = [rng2.standard_normal(16) for _ in range(3)]
    return [
        Case("BM25-like non-negative vectors over 30 terms (query of 4 terms, documents of 9 and 12)", (q, d1, d2)),
        Case("the same vectors with the documents swapped (a negative margin)", (q, d2, d1)),
        Case("dense Gaussian vectors of dimension 16", tuple(dense)),
        Case("one dimension: q = [2], d1 = [3], d2 = [1] (margin 1)",
             (np.array([2.0]), np.array([3.0]), np.array([1.0]))),
        Case("a query orthogonal to d1 - d2 (margin 0)",
             (np.array([1.0, 1.0, 0.0]), np.array([2.0, 0.0, 5.0]), np.array([0.0, 2.0, 1.0]))),
    ]


MARGIN = Exercise(
    name="margin", chapter="08_retrieval_encodings", task="the normalised margin <q, d1 - d2> / (|q| |d1 - d2|)",
    reference=_margin_reference, cases=_margin_cases)


def check_margin(student_fn) -> str:
    """Check ``margin(q, d1, d2)``: for a query and two documents as dense ``(V,)`` arrays, the
    normalised margin :math:`\\langle q, d_1 - d_2\\rangle / (\\lVert q\\rVert \\lVert d_1 -
    d_2\\rVert)` as a float (luan2021sparse). Compared with
    :func:`sparsity_core.retrieval.margin.normalized_margin`; taught in Chapter 8
    (``08_retrieval_encodings``, 8.7; Exercise 1)."""
    return run_check(MARGIN, student_fn)


# --------------------------------------------- 08_retrieval_encodings, Exercise 2: Chamfer similarity

def _chamfer_reference(query, doc):
    return chamfer(query, doc)


def _unit_rows(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _chamfer_cases() -> list[Case]:
    rng = _rng(8)
    return [
        Case("3 query vectors and 5 document vectors of dimension 8",
             (rng.standard_normal((3, 8)), rng.standard_normal((5, 8)))),
        Case("4 query and 9 document unit vectors of dimension 16, float32 (as the token embeddings)",
             (_unit_rows(4, 16, rng), _unit_rows(9, 16, rng))),
        Case("one query vector and one document vector with a negative inner product",
             (np.array([[1.0, -2.0, 0.5]]), np.array([[-1.0, 1.0, 2.0]]))),
        Case("6 query vectors against a document of a single vector (every query vector takes it)",
             (rng.standard_normal((6, 4)), rng.standard_normal((1, 4)))),
    ]


CHAMFER_LOOP = Exercise(
    name="chamfer_loop", chapter="08_retrieval_encodings",
    task="the Chamfer similarity: sum over query vectors of the best inner product",
    reference=_chamfer_reference, cases=_chamfer_cases)


def check_chamfer_loop(student_fn) -> str:
    """Check ``chamfer_loop(query, doc)``: for one query's token vectors ``(n_q, d)`` and one
    document's ``(n_d, d)``, the Chamfer similarity :math:`\\sum_q \\max_d \\langle q, d\\rangle`
    as a float (khattab2020colbert's late interaction; dhulipala2024muvera). Compared with
    :func:`sparsity_core.retrieval.muvera.chamfer`; taught in Chapter 8
    (``08_retrieval_encodings``, 8.8, MUVERA; Exercise 2)."""
    return run_check(CHAMFER_LOOP, student_fn)


# ------------------------------------- 08_retrieval_sparse_codes, Exercise 1: sparse inner product cost

def _overlap_reference(fq, fd):
    return overlap_cost(fq, fd)


def _codes(rows: int, n: int, density: float, seed: int, signed: bool = False) -> torch.Tensor:
    g = _gen(seed)
    values = torch.randn(rows, n, generator=g)
    values = values if signed else values.abs() + 0.01
    return values * (torch.rand(rows, n, generator=g) < density)


def _overlap_cases() -> list[Case]:
    fq, fd = _codes(4, 24, 0.3, seed=9), _codes(6, 24, 0.3, seed=10)
    fq_empty = fq.clone()
    fq_empty[2] = 0.0
    return [
        Case("4 query codes and 6 document codes over 24 latents, about 30 % active", (fq, fd)),
        Case("the same codes with query 2 all zero (it overlaps nothing)", (fq_empty, fd)),
        Case("codes with negative values (a latent is active when it is non-zero, whatever its sign)",
             (_codes(3, 10, 0.5, seed=11, signed=True), _codes(5, 10, 0.5, seed=12, signed=True))),
        Case("one query code and one document code over 64 latents",
             (_codes(1, 64, 0.25, seed=13), _codes(1, 64, 0.25, seed=14))),
    ]


OVERLAP_LOOP = Exercise(
    name="overlap_loop", chapter="08_retrieval_sparse_codes",
    task="the latents active in both codes, per query and document",
    reference=_overlap_reference, cases=_overlap_cases)


def check_overlap_loop(student_fn) -> str:
    """Check ``overlap_loop(fq, fd)``: for query codes ``fq (Q, n)`` and document codes
    ``fd (N, n)``, the ``(Q, N)`` float tensor of the number of latents non-zero in both, the
    multiply-adds of each sparse inner product. Compared with
    :func:`sparsity_core.retrieval.sparse_codes.overlap_cost`; taught in Chapter 8
    (``08_retrieval_sparse_codes``, 8.10, Exercise 1)."""
    return run_check(OVERLAP_LOOP, student_fn)


# ------------------------------------------ 08_retrieval_sparse_codes, Exercise 2: in-batch ranking loss

def _ranking_loss_reference(fq, fd):
    return in_batch_loss(fq, fd)


def _ranking_loss_cases() -> list[Case]:
    fq, fd = _codes(5, 16, 0.4, seed=15), _codes(5, 16, 0.4, seed=16)
    fd_pos = fd + 0.5 * fq                                      # documents that share their query's latents
    big_q, big_d = 6.0 * _codes(4, 12, 0.5, seed=17), 6.0 * _codes(4, 12, 0.5, seed=18)
    return [
        Case("5 query codes and their 5 documents' codes over 16 latents", (fq, fd)),
        Case("5 pairs whose documents share their query's latents (lower loss)", (fq, fd_pos)),
        Case("a batch of a single pair (no negatives: the loss is 0)",
             (_codes(1, 8, 0.5, seed=19), _codes(1, 8, 0.5, seed=20))),
        Case("4 pairs with large codes (scores up to about 250: exp overflows in float32, "
             "so the loss must go through log-sum-exp)", (big_q, big_d)),
    ]


RANKING_LOSS_LOOP = Exercise(
    name="ranking_loss_loop", chapter="08_retrieval_sparse_codes",
    task="the in-batch ranking loss, mean over queries of -log softmax of the own document's score",
    reference=_ranking_loss_reference, cases=_ranking_loss_cases)


def check_ranking_loss_loop(student_fn) -> str:
    """Check ``ranking_loss_loop(fq, fd)``: for ``P`` query codes ``fq (P, n)`` and the codes of
    their documents ``fd (P, n)`` (row ``i`` the positive of query ``i``, the other rows its
    negatives), the mean over queries of :math:`-\\log \\mathrm{softmax}_j(\\langle f_{q_i},
    f_{d_j}\\rangle)_i`, as a 0-dimensional tensor (formal2021splade, Eq. 4). Compared with
    :func:`sparsity_core.retrieval.splade.in_batch_loss`; taught in Chapter 8
    (``08_retrieval_sparse_codes``, 8.10, CSR's ranking loss; Exercise 2)."""
    return run_check(RANKING_LOSS_LOOP, student_fn)


#: The chapter's checked exercises.
EXERCISES: tuple[Exercise, ...] = (MY_PIVOT, QUANTISE, RANGE_BOUNDS, MARGIN, CHAMFER_LOOP, OVERLAP_LOOP,
                                   RANKING_LOSS_LOOP)
