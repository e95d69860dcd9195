r"""MUVERA's fixed dimensional encodings (FDEs): one vector per multi-vector text whose inner
product approximates the Chamfer (late-interaction) similarity (dhulipala2024muvera).

The Chamfer similarity of a query's vectors :math:`Q` and a document's vectors :math:`D` is
:math:`\mathrm{CH}(Q, D) = \sum_{q \in Q} \max_{d \in D} \langle q, d \rangle` (ColBERT's MaxSim).
An FDE splits space into :math:`2^{k_\mathrm{sim}}` regions by the signs of
:math:`k_\mathrm{sim}` random Gaussian directions (SimHash) and keeps, per region, the **sum** of
the query's vectors and the **mean** of the document's vectors there; a document region left
empty takes the vector of the document point whose sign pattern is nearest in Hamming distance
(``fill_empty``). Then :math:`\langle \mathrm{FDE}(Q), \mathrm{FDE}(D) \rangle = \sum_q \langle q,
\bar d_{\text{region}(q)} \rangle`, which equals :math:`\mathrm{CH}(Q, D)` exactly when each query
vector's region holds one document vector and it is that query vector's best match. Each region's
block may be shrunk by a random projection to ``proj_dim`` coordinates (each input coordinate
added, with a random sign, to one output coordinate; inner products are preserved in
expectation), the whole is repeated ``reps`` times with fresh randomness and concatenated, and an
optional final count sketch maps it to ``final_dim``. The dimension is
:math:`\text{reps} \cdot 2^{k_\mathrm{sim}} \cdot \text{proj\_dim}` (:func:`fde_dimension`).

Region indices follow the reference's Gray-code order (appending a sign bit ``b`` to index ``g``
gives ``2g + (b xor (g & 1))``), so that neighbouring indices differ in one sign.

Reference code read: ``google/graph-mining`` ``sketching/point_cloud/fixed_dimensional_encoding.cc``
(``GenerateQueryFixedDimensionalEncoding``, ``GenerateDocumentFixedDimensionalEncoding``,
``SimHashPartitionIndex``, ``DistanceToSimHashPartition``, ``AMSProjectionMatrixFromSeed``,
``ApplyCountSketchToVector``). Our random draws use numpy's generator, not the reference's
``mt19937``, so encodings match the reference in distribution, not bit for bit.

Batches of texts are passed as one ``(sum of n, d)`` array of stacked vectors and the ``(texts,)``
counts ``lengths`` (:meth:`FDE.encode_batch`, :func:`chamfer_matrix`,
:func:`token_knn_candidates`, the paper's single-vector heuristic).

Dimension letters: n vectors of a text, d their dimension, D the FDE dimension, Q query texts,
N document texts.

Taught in: Chapter 8, "Retrieval" (multi-vector retrieval, a later part).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .. import checks

__all__ = ["FDEConfig", "FDE", "fde_dimension", "chamfer", "chamfer_matrix", "gray_partition",
           "token_knn_candidates"]


@dataclass(frozen=True)
class FDEConfig:
    """An FDE's sizes.

    Attributes:
        dim: d, the input vectors' dimension.
        reps: independent repetitions, concatenated.
        k_sim: SimHash directions per repetition (``2^k_sim`` regions; 0 = one region).
        proj_dim: coordinates per region after the inner projection (``None``: no projection, d).
        final_dim: length after the final count sketch (``None``: none).
        fill_empty: documents fill an empty region with their Hamming-nearest point.
        seed: the random draws.
    """

    dim: int
    reps: int = 1
    k_sim: int = 0
    proj_dim: int | None = None
    final_dim: int | None = None
    fill_empty: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        checks.positive_int(self.dim, "dim")
        checks.positive_int(self.reps, "reps")
        checks.integer(self.k_sim, "k_sim", lo=0, hi=30)
        if self.proj_dim is not None:
            checks.positive_int(self.proj_dim, "proj_dim")
        if self.final_dim is not None:
            checks.positive_int(self.final_dim, "final_dim")


def fde_dimension(cfg: FDEConfig) -> int:
    """``reps * 2**k_sim * proj_dim`` (``proj_dim`` defaulting to ``dim``), or ``final_dim``."""
    if cfg.final_dim is not None:
        return cfg.final_dim
    return cfg.reps * 2 ** cfg.k_sim * (cfg.proj_dim or cfg.dim)


def gray_partition(signs: np.ndarray) -> np.ndarray:
    """Region index of each row of ``(n, k)`` booleans (first column appended first, Gray order)."""
    signs = np.asarray(signs, dtype=bool)
    if signs.ndim != 2:
        raise ValueError(f"signs must be (n, k) (got shape {signs.shape})")
    index = np.zeros(signs.shape[0], dtype=np.int64)
    for col in signs.T:
        index = (index << 1) + (col.astype(np.int64) ^ (index & 1))
    return index


def _sign_pattern(index: int, k: int) -> np.ndarray:
    """The ``(k,)`` booleans whose :func:`gray_partition` is ``index``."""
    bits = index ^ (index >> 1)
    return np.array([(bits >> (k - 1 - i)) & 1 for i in range(k)], dtype=bool)


def chamfer(query: np.ndarray, doc: np.ndarray) -> float:
    """:math:`\\sum_{q} \\max_{d} \\langle q, d \\rangle` of ``(n_q, d)`` and ``(n_d, d)`` vectors."""
    query = np.asarray(query, dtype=np.float64)
    if query.ndim != 2:
        raise ValueError(f"query must be (n_q, d) (got shape {query.shape})")
    query, doc = _points(query, query.shape[1]), _points(doc, query.shape[1])
    return float((query @ doc.T).max(axis=1).sum())


def _points(points, dim: int) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] == 0 or points.shape[1] != dim:
        raise ValueError(f"points must be a non-empty (n, {dim}) array (got shape {points.shape})")
    if not np.isfinite(points).all():
        raise ValueError("points must be finite")
    return points


def _stacked(points, lengths, dim: int):
    """Validate stacked vectors and their per-text counts; also each vector's text and each
    text's first row."""
    points = _points(points, dim)
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.size == 0 or not np.issubdtype(lengths.dtype, np.integer) or (lengths < 1).any():
        raise ValueError("lengths must be a non-empty 1-D array of positive integers (every text needs a vector)")
    if int(lengths.sum()) != points.shape[0]:
        raise ValueError(f"lengths add up to {int(lengths.sum())} but there are {points.shape[0]} vectors")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return points, lengths, np.repeat(np.arange(len(lengths)), lengths), starts


def chamfer_matrix(query_points, query_lengths, doc_points, doc_lengths, chunk: int = 4096) -> np.ndarray:
    """``(Q, N)`` :func:`chamfer` of every query text with every document text (stacked vectors,
    see the module docstring), ``chunk`` document vectors at a time."""
    q, q_len, q_owner, q_starts = _stacked(query_points, query_lengths, np.asarray(query_points).shape[-1])
    d, d_len, d_owner, d_starts = _stacked(doc_points, doc_lengths, q.shape[1])
    chunk = checks.positive_int(chunk, "chunk")
    out, d_ends = np.empty((len(q_len), len(d_len))), d_starts + d_len
    lo = 0
    while lo < len(d_len):                                    # whole texts per chunk
        hi = max(lo + 1, int(np.searchsorted(d_ends, d_starts[lo] + chunk, side="right")))
        rows = slice(d_starts[lo], d_starts[hi - 1] + d_len[hi - 1])
        sims = q @ d[rows].T                                  # (query vectors, chunk vectors)
        best = np.maximum.reduceat(sims, d_starts[lo:hi] - d_starts[lo], axis=1)     # max over each doc's vectors
        out[:, lo:hi] = np.add.reduceat(best, q_starts, axis=0)                      # sum over each query's
        lo = hi
    return out


def token_knn_candidates(query_points, query_lengths, doc_points, doc_lengths, per_token):
    """The single-vector (SV) heuristic of MUVERA's baseline: each query vector retrieves its
    ``per_token`` nearest document vectors by inner product; a query's candidates are the documents
    they belong to, deduplicated.

    Args:
        per_token: a positive int, or a sequence of them (one search serves them all).

    Returns:
        Q arrays of document indices, each ordered by its best vector's rank (the closest first);
        for a sequence ``per_token``, one such list per value.
    """
    q, q_len, _, q_starts = _stacked(query_points, query_lengths, np.asarray(query_points).shape[-1])
    d, _, d_owner, _ = _stacked(doc_points, doc_lengths, q.shape[1])
    many = np.ndim(per_token) == 1
    wanted = [min(checks.positive_int(p, "per_token"), len(d)) for p in (per_token if many else [per_token])]
    n = max(wanted)
    top = np.empty((len(q), n), dtype=np.int64)                           # each query vector's nearest rows,
    score = np.empty((len(q), n))                                         # closest first
    for lo in range(0, len(q), 256):
        sims = q[lo:lo + 256] @ d.T                                       # (<= 256, doc vectors)
        part = np.argpartition(-sims, n - 1, axis=1)[:, :n]
        part_score = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_score, axis=1, kind="stable")
        top[lo:lo + 256] = np.take_along_axis(part, order, axis=1)
        score[lo:lo + 256] = np.take_along_axis(part_score, order, axis=1)
    results = []
    for p in wanted:
        out = []
        for start, m in zip(q_starts, q_len):
            docs = d_owner[top[start:start + m, :p].ravel()][np.argsort(-score[start:start + m, :p].ravel(), kind="stable")]
            _, first = np.unique(docs, return_index=True)
            out.append(docs[np.sort(first)])
        results.append(out)
    return results if many else results[0]


class FDE:
    """Encoder of query and document vector sets into FDEs (module docstring).

    Args:
        cfg: the sizes and seed.

    Attributes:
        simhash: ``(reps, d, k_sim)`` Gaussian directions.
        projection: ``(reps, d, proj_dim)`` sparse sign matrices (one non-zero per row), or None.
        sketch_index, sketch_sign: ``(reps * 2^k_sim * proj_dim,)`` the final count sketch, or None.
    """

    def __init__(self, cfg: FDEConfig):
        if not isinstance(cfg, FDEConfig):
            raise TypeError(f"cfg must be an FDEConfig (got {type(cfg).__name__})")
        self.cfg = cfg
        rng = np.random.default_rng(cfg.seed)
        self.simhash = rng.standard_normal((cfg.reps, cfg.dim, cfg.k_sim))
        self.projection = None
        if cfg.proj_dim is not None:
            self.projection = np.zeros((cfg.reps, cfg.dim, cfg.proj_dim))
            for r in range(cfg.reps):
                cols = rng.integers(0, cfg.proj_dim, size=cfg.dim)
                self.projection[r, np.arange(cfg.dim), cols] = rng.choice([-1.0, 1.0], size=cfg.dim)
        self.sketch_index = self.sketch_sign = None
        if cfg.final_dim is not None:
            inner = cfg.reps * 2 ** cfg.k_sim * (cfg.proj_dim or cfg.dim)
            self.sketch_index = rng.integers(0, cfg.final_dim, size=inner)
            self.sketch_sign = rng.choice([-1.0, 1.0], size=inner)

    def encode_query(self, points: np.ndarray) -> np.ndarray:
        """``(n, d)`` query vectors -> ``(D,)``: per region the **sum** of its vectors."""
        return self._encode(_points(points, self.cfg.dim), document=False)

    def encode_document(self, points: np.ndarray) -> np.ndarray:
        """``(n, d)`` document vectors -> ``(D,)``: per region the **mean** of its vectors (empty
        regions filled when ``cfg.fill_empty``)."""
        return self._encode(_points(points, self.cfg.dim), document=True)

    def encode_batch(self, points: np.ndarray, lengths, document: bool) -> np.ndarray:
        """Stacked ``(sum(lengths), d)`` vectors of ``len(lengths)`` texts -> ``(texts, D)`` FDEs,
        row ``i`` equal to :meth:`encode_document` (``document=True``) or :meth:`encode_query` of
        text ``i``'s vectors; all texts at once (the per-text methods are the slow twins)."""
        points, lengths, owner, starts = _stacked(points, lengths, self.cfg.dim)
        cfg, n_texts = self.cfg, len(lengths)
        n_regions, width = 2 ** cfg.k_sim, cfg.proj_dim or cfg.dim
        weights = 1 << np.arange(cfg.k_sim - 1, -1, -1)                         # sign bits -> integer code
        region_code = np.array([_sign_pattern(g, cfg.k_sim) @ weights for g in range(n_regions)], dtype=np.int64)
        popcount = np.array([bin(c).count("1") for c in range(n_regions)], dtype=np.int64)
        n_points = points.shape[0]
        blocks = []
        for r in range(cfg.reps):
            signs = points @ self.simhash[r] > 0                                  # (n, k_sim)
            cell = owner * n_regions + gray_partition(signs)                      # (n,) text-major cells
            projected = points if self.projection is None else points @ self.projection[r]   # (n, width)
            onehot = sp.csr_array((np.ones(len(cell)), (cell, np.arange(len(cell)))),
                                  shape=(n_texts * n_regions, len(cell)))
            sums = onehot @ projected                                             # (texts * regions, width)
            if document:
                counts = np.bincount(cell, minlength=n_texts * n_regions)
                sums[counts > 0] /= counts[counts > 0, None]
                empty = np.flatnonzero(counts == 0)
                if cfg.fill_empty and cfg.k_sim > 0 and empty.size:
                    hamming = popcount[(signs @ weights)[:, None] ^ region_code[None]]      # (n, regions)
                    # smallest (Hamming distance, position) per text and region: the first nearest point
                    key = hamming * n_points + np.arange(n_points)[:, None]
                    first = np.minimum.reduceat(key, starts, axis=0) % n_points           # (texts, regions)
                    text, region = np.divmod(empty, n_regions)
                    sums[empty] = projected[first[text, region]]
            blocks.append(sums.reshape(n_texts, n_regions * width))
        out = np.concatenate(blocks, axis=1)
        if self.sketch_index is not None:
            sketch = sp.csr_array((self.sketch_sign, (np.arange(out.shape[1]), self.sketch_index)),
                                  shape=(out.shape[1], cfg.final_dim))
            out = np.asarray(out @ sketch)
        return out

    def _encode(self, points: np.ndarray, document: bool) -> np.ndarray:
        cfg = self.cfg
        n_regions, width = 2 ** cfg.k_sim, cfg.proj_dim or cfg.dim
        blocks = []
        for r in range(cfg.reps):
            signs = points @ self.simhash[r] > 0                                  # (n, k_sim)
            region = gray_partition(signs)                                        # (n,)
            projected = points if self.projection is None else points @ self.projection[r]   # (n, width)
            sums = np.zeros((n_regions, width))
            np.add.at(sums, region, projected)
            if document:
                counts = np.bincount(region, minlength=n_regions)
                sums[counts > 0] /= counts[counts > 0, None]
                if cfg.fill_empty and cfg.k_sim > 0:
                    for empty in np.flatnonzero(counts == 0):
                        hamming = (signs != _sign_pattern(int(empty), cfg.k_sim)).sum(axis=1)
                        sums[empty] = projected[int(np.argmin(hamming))]          # first of the nearest
            blocks.append(sums.ravel())
        out = np.concatenate(blocks)
        if self.sketch_index is not None:
            out = np.bincount(self.sketch_index, weights=self.sketch_sign * out, minlength=cfg.final_dim)
        return out
