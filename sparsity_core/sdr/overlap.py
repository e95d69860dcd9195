"""All-pairs overlaps between two SDR sets, three ways ("Going fast" in Chapter 1).

Every method returns the same int64 matrix (Ba, Bb) of overlaps :math:`|a_i \\cap b_j|`:

* :func:`overlap_popcount`: bit-packed 64-bit words, AND, popcount (numpy's
  ``np.bitwise_count``, numpy >= 2; a byte lookup table otherwise);
* :func:`overlap_sparse`: index lists as scipy CSR matrices, ``A @ B.T``;
* :func:`overlap_dense`: 0/1 float32 matrices, ``a @ b.T`` (exact while n < 2**24).

Dimensions: Ba, Bb set sizes; n vector size; w ON bits per row; W = ceil(n / 64) words.

Reference: ahmad2015properties (overlap as the SDR similarity).
Taught in: Chapter 1, "SDR theory", section "Going fast".
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .. import checks

__all__ = [
    "pack_bits",
    "overlap_popcount",
    "overlap_sparse",
    "overlap_dense",
    "indices_to_dense",
]

WORD_BITS = 64
FLOAT32_EXACT_INTS = 2**24  # float32 has a 24-bit significand: integers up to 2**24 are exact
POPCOUNT_BUDGET = 2**24  # uint64 words per AND block in overlap_popcount (128 MB)
_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _check_bool_matrix(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (got {type(x).__name__})")
    if x.dtype != torch.bool or x.dim() != 2:
        raise ValueError(f"{name} must be a 2-D bool tensor (got dtype={x.dtype}, shape={tuple(x.shape)})")
    return x


def _check_words(x: object, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.uint64 or x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D np.uint64 array from pack_bits (got {type(x).__name__}"
                         f" {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')})")
    return x


def _check_indices(idx: object, name: str, n: int) -> torch.Tensor:
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (got {type(idx).__name__})")
    if idx.dtype not in (torch.int32, torch.int64) or idx.dim() != 2:
        raise ValueError(f"{name} must be a 2-D integer tensor (got dtype={idx.dtype}, shape={tuple(idx.shape)})")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise ValueError(f"{name} entries must satisfy 0 <= index < n (n={n})")
    if idx.shape[1] > 1 and bool((idx.sort(dim=1).values.diff(dim=1) == 0).any()):
        raise ValueError(f"{name} rows must hold distinct indices")
    return idx


def indices_to_dense(idx: torch.Tensor, n: int) -> torch.Tensor:
    """ON-bit indices (B, w) -> BoolTensor (B, n)."""
    n = checks.integer(n, "n", lo=1)
    idx = _check_indices(idx, "idx", n)
    return torch.zeros(idx.shape[0], n, dtype=torch.bool).scatter_(1, idx.long(), True)


def pack_bits(x: torch.Tensor) -> np.ndarray:
    """Pack a BoolTensor (B, n) into little-endian 64-bit words, np.uint64 (B, W).

    Bit ``k`` of row ``i`` is bit ``k % 64`` of word ``k // 64``; padding bits are 0.
    """
    x = _check_bool_matrix(x, "x")
    rows, n = x.shape
    words = -(-n // WORD_BITS)
    packed = np.packbits(x.cpu().numpy(), axis=1, bitorder="little")  # (B, ceil(n/8)) uint8
    padded = np.zeros((rows, words * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view("<u8").astype(np.uint64, copy=False)


def _popcount(words: np.ndarray) -> np.ndarray:
    """Per-word popcount of a uint64 array, as uint8."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(words)
    as_bytes = words.view(np.uint8).reshape(*words.shape, 8)
    return _BYTE_POPCOUNT[as_bytes].sum(-1, dtype=np.uint8)


def overlap_popcount(a_packed: np.ndarray, b_packed: np.ndarray, chunk: int | None = None) -> torch.Tensor:
    """Overlaps of packed SDRs: popcount(a_i AND b_j) summed over words.

    Args:
        a_packed: np.uint64 (Ba, W) from :func:`pack_bits`.
        b_packed: np.uint64 (Bb, W), same W.
        chunk: rows of ``a`` per block; default keeps a block's AND at about
            ``POPCOUNT_BUDGET`` words.

    Returns:
        LongTensor (Ba, Bb).
    """
    a = _check_words(a_packed, "a_packed")
    b = _check_words(b_packed, "b_packed")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a_packed and b_packed must have the same words per row (got {a.shape[1]}, {b.shape[1]})")
    if chunk is None:
        chunk = max(1, POPCOUNT_BUDGET // max(1, b.shape[0] * b.shape[1]))
    chunk = checks.integer(chunk, "chunk", lo=1)
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.int64)
    for start in range(0, a.shape[0], chunk):
        block = a[start : start + chunk, None, :] & b[None, :, :]  # (chunk, Bb, W)
        out[start : start + chunk] = _popcount(block).sum(-1, dtype=np.int64)
    return torch.from_numpy(out)


def overlap_sparse(a_idx: torch.Tensor, b_idx: torch.Tensor, n: int) -> torch.Tensor:
    """Overlaps from index lists with scipy CSR matrices: ``A @ B.T``.

    Args:
        a_idx: integer tensor (Ba, w_a) of distinct ON-bit indices per row.
        b_idx: integer tensor (Bb, w_b).
        n: vector size.

    Returns:
        LongTensor (Ba, Bb).
    """
    n = checks.integer(n, "n", lo=1)

    def csr(name: str, idx: torch.Tensor) -> sp.csr_array:
        idx = _check_indices(idx, name, n).cpu().numpy().astype(np.int64)
        rows, w = idx.shape
        indptr = np.arange(0, rows * w + 1, w, dtype=np.int64) if rows else np.zeros(1, np.int64)
        return sp.csr_array((np.ones(rows * w, dtype=np.int64), idx.ravel(), indptr), shape=(rows, n))

    product = csr("a_idx", a_idx) @ csr("b_idx", b_idx).T
    return torch.from_numpy(np.asarray(product.toarray(), dtype=np.int64))


def overlap_dense(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Overlaps of dense SDRs as a float32 matmul of 0/1 matrices.

    Args:
        a: BoolTensor (Ba, n).
        b: BoolTensor (Bb, n).

    Returns:
        LongTensor (Ba, Bb); exact because every count is < 2**24 (``n`` is checked).
    """
    a = _check_bool_matrix(a, "a")
    b = _check_bool_matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same n (got {a.shape[1]}, {b.shape[1]})")
    if a.shape[1] >= FLOAT32_EXACT_INTS:
        raise ValueError(f"n must be < 2**24 for exact float32 counts (got n={a.shape[1]})")
    return (a.float() @ b.float().T).round().long()
