"""Sparse attention patterns as boolean masks and as block masks, with their closed-form sizes.

Every pattern is an ``(n, n)`` bool tensor ``mask`` with ``mask[i, j]`` True when query ``i``
may attend to key ``j`` (0-based). Causal patterns keep ``j <= i``. Block patterns are
``(n_blocks, n_blocks)`` bool tensors over blocks of ``block`` tokens; :func:`expand_blocks`
turns them into token masks and :func:`blocks_of` goes back (a block is kept when any of its
entries is).

* Sparse Transformers (child2019generating, Sec. 4.2, 0-based): **strided**
  :math:`A^{(1)}_i = \\{j: i - l \\le j \\le i\\}`, :math:`A^{(2)}_i = \\{j \\le i: (i - j) \\bmod l = 0\\}`;
  **fixed** :math:`A^{(1)}_i = \\{j \\le i: \\lfloor j/l \\rfloor = \\lfloor i/l \\rfloor\\}`,
  :math:`A^{(2)}_i = \\{j \\le i: j \\bmod l \\in \\{l - c, \\dots, l - 1\\}\\}` (the paper's
  1-based "{t, ..., l}, t = l - c": the last ``c`` positions of each block).
  Reference: ``openai/sparse_attention`` ``attention.py`` ``get_attn_mask`` (local and strided;
  the fixed pattern is not in that repository).
* BigBird ITC (zaheer2020big, Sec. 2 and App. D; ``google-research/bigbird``
  ``bigbird/core/attention.py``, ``bigbird_block_rand_mask``): blocks of ``block`` tokens, the
  first and last blocks global; every other query block attends to its neighbours ``j - 1, j,
  j + 1``, the global blocks and ``num_rand`` random middle blocks outside its window.
* A-shape (StreamingLLM's attention sinks + a local window, xiao2024efficient) and
  vertical-slash (MInference, jiang2024minference): causal token patterns.
* Block top-k: each query block keeps the ``k`` key blocks of largest score (causal blocks only
  when ``causal``), the selection step of block-sparse dynamic attention (NSA's selection
  branch, yuan2025native).

Graph view: a mask is a directed graph, an edge from key ``j`` to query ``i`` when ``mask[i, j]``
(one attention layer moves information along it). :func:`diameter` is the number of layers
after which every token can have heard from every other (BigBird's argument for global tokens:
a constant diameter, zaheer2020big Sec. 2).

Closed forms (:func:`strided_count`, :func:`fixed_count`, :func:`a_shape_count`,
:func:`bigbird_block_count`) give the number of kept entries without building the mask; the
tests check each against the mask it counts.

Taught in: Chapter 6, "Sparse attention".
"""
from __future__ import annotations

import torch

from .. import checks

__all__ = ["causal_mask", "local_mask", "strided_heads", "strided_mask", "fixed_heads", "fixed_mask",
           "strided_count", "fixed_count", "two_hop_reachable", "bigbird_block_mask", "bigbird_block_count",
           "a_shape_mask", "a_shape_count", "vertical_slash_mask", "topk_mask", "block_topk_mask", "expand_blocks",
           "blocks_of", "density", "diameter", "hop_distance"]


def _n(n: object) -> int:
    return checks.positive_int(n, "n")


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    i = torch.arange(n)[:, None]                                         # (n, 1) queries
    j = torch.arange(n)[None, :]                                         # (1, n) keys
    return i, j


def causal_mask(n: int) -> torch.Tensor:
    """``(n, n)``: ``j <= i`` (dense causal attention, ``n (n + 1) / 2`` entries)."""
    i, j = _grid(_n(n))
    return j <= i


def local_mask(n: int, window: int) -> torch.Tensor:
    """``(n, n)``: causal band ``0 <= i - j < window`` (each query sees itself and the
    ``window - 1`` keys before it)."""
    n, window = _n(n), checks.positive_int(window, "window")
    i, j = _grid(n)
    return (j <= i) & (i - j < window)


def strided_heads(n: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two heads of the strided pattern, ``(A1, A2)``, each ``(n, n)``.

    ``A1``: ``i - stride <= j <= i`` (the previous ``stride`` keys and itself);
    ``A2``: ``j <= i`` and ``(i - j) mod stride == 0``.
    """
    n, l = _n(n), checks.positive_int(stride, "stride")
    i, j = _grid(n)
    causal = j <= i
    return causal & (i - j <= l), causal & ((i - j) % l == 0)


def strided_mask(n: int, stride: int) -> torch.Tensor:
    """``(n, n)``: the union of the strided heads (the "merged" form of child2019generating)."""
    a1, a2 = strided_heads(n, stride)
    return a1 | a2


def fixed_heads(n: int, stride: int, c: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two heads of the fixed pattern, ``(A1, A2)``, each ``(n, n)``.

    ``A1``: causal and in the same block of ``stride`` tokens; ``A2``: causal and ``j`` among
    the last ``c`` positions of its block (the summary positions), ``1 <= c <= stride``.
    """
    n, l = _n(n), checks.positive_int(stride, "stride")
    c = checks.integer(c, "c", lo=1, hi=l)
    i, j = _grid(n)
    causal = j <= i
    return causal & (j // l == i // l), causal & (j % l >= l - c)


def fixed_mask(n: int, stride: int, c: int) -> torch.Tensor:
    """``(n, n)``: the union of the fixed heads."""
    a1, a2 = fixed_heads(n, stride, c)
    return a1 | a2


def strided_count(n: int, stride: int) -> int:
    """Entries of :func:`strided_mask`:
    :math:`\\sum_i \\big[\\min(i, l) + 1 + \\lfloor i/l \\rfloor + 1 - 1 - [i \\ge l]\\big]`
    (the band, plus the stride hits, minus the hit at ``j = i`` and the one at ``j = i - l``
    that the band already holds)."""
    n, l = _n(n), checks.positive_int(stride, "stride")
    return sum(min(i, l) + 1 + i // l - (1 if i >= l else 0) for i in range(n))


def fixed_count(n: int, stride: int, c: int) -> int:
    """Entries of :func:`fixed_mask`: :math:`\\sum_i [(i \\bmod l) + 1 + c \\lfloor i/l \\rfloor]`
    (the causal part of the own block, plus ``c`` summary keys in every earlier block).
    With ``c`` constant and ``l = sqrt(n)`` it grows as :math:`n^{1.5}`; with ``c`` proportional
    to ``l`` it is :math:`\\Theta(n^2)`."""
    n, l = _n(n), checks.positive_int(stride, "stride")
    c = checks.integer(c, "c", lo=1, hi=l)
    return sum(i % l + 1 + c * (i // l) for i in range(n))


def two_hop_reachable(a1: torch.Tensor, a2: torch.Tensor) -> torch.Tensor:
    """``(n, n)``: pairs joined by one step of either head or by ``A1`` then ``A2``
    (:math:`I \\cup A_1 \\cup A_2 \\cup A_2 A_1`: two layers, the first with head 1, the second
    with head 2, as child2019generating's argument for full connectivity in two steps)."""
    if a1.shape != a2.shape or a1.dim() != 2 or a1.shape[0] != a1.shape[1]:
        raise ValueError(f"a1 and a2 must be square masks of one shape (got {tuple(a1.shape)}, {tuple(a2.shape)})")
    eye = torch.eye(a1.shape[0], dtype=torch.bool)
    # i reaches j in two steps when some m has A2[i, m] and A1[m, j]
    two = (a2.float() @ a1.float()) > 0
    return eye | a1 | a2 | two


def bigbird_block_mask(n_blocks: int, num_rand: int = 3, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n_blocks, n_blocks)`` BigBird ITC block mask (not causal).

    Rows and columns 0 and ``n_blocks - 1`` (the global blocks) are all True; every other
    query block ``q`` keeps ``q - 1, q, q + 1`` and ``num_rand`` random blocks drawn without
    replacement from the middle blocks ``1 .. n_blocks - 2`` outside ``{q - 1, q, q + 1}``
    (all of them when fewer remain), as ``bigbird_block_rand_mask`` does.

    Args:
        n_blocks: >= 3 (two global blocks and at least one middle block).
        num_rand: random blocks per middle query block (the paper's 3), >= 0.
        generator: draws the random blocks.
    """
    nb = checks.integer(n_blocks, "n_blocks", lo=3)
    r = checks.integer(num_rand, "num_rand", lo=0)
    checks.generator(generator)
    mask = torch.zeros(nb, nb, dtype=torch.bool)
    mask[[0, -1], :] = True
    mask[:, [0, -1]] = True
    for q in range(1, nb - 1):
        mask[q, q - 1:q + 2] = True
        candidates = torch.tensor([b for b in range(1, nb - 1) if abs(b - q) > 1], dtype=torch.long)
        if r and candidates.numel():
            pick = candidates[torch.randperm(candidates.numel(), generator=generator)[:r]]
            mask[q, pick] = True
    return mask


def bigbird_block_count(n_blocks: int, num_rand: int = 3) -> int:
    """Kept blocks of :func:`bigbird_block_mask` when every middle row has ``num_rand``
    candidates (``n_blocks >= num_rand + 5``):
    ``2 nb + 2 (4 + r) + (nb - 4)(5 + r)`` for ``nb >= 4``: the two global rows, the two rows
    next to them (window, the far global block, ``r`` random) and the rest (window, two globals,
    ``r`` random)."""
    nb = checks.integer(n_blocks, "n_blocks", lo=4)
    r = checks.integer(num_rand, "num_rand", lo=0)
    if nb < r + 5:
        raise ValueError(f"the closed form needs n_blocks >= num_rand + 5 (got {nb}, {r})")
    return 2 * nb + 2 * (4 + r) + (nb - 4) * (5 + r)


def a_shape_mask(n: int, sink: int, window: int) -> torch.Tensor:
    """``(n, n)`` causal: the first ``sink`` keys (attention sinks) and a local ``window``
    (``0 <= i - j < window``)."""
    n = _n(n)
    sink = checks.integer(sink, "sink", lo=0)
    i, j = _grid(n)
    return local_mask(n, window) | ((j < sink) & (j <= i))


def a_shape_count(n: int, sink: int, window: int) -> int:
    """Entries of :func:`a_shape_mask`:
    :math:`\\sum_i [\\min(i + 1, w) + \\min(s, \\max(0, i + 1 - w))]`."""
    n = _n(n)
    s = checks.integer(sink, "sink", lo=0)
    w = checks.positive_int(window, "window")
    return sum(min(i + 1, w) + min(s, max(0, i + 1 - w)) for i in range(n))


def vertical_slash_mask(n: int, verticals, slashes) -> torch.Tensor:
    """``(n, n)`` causal: whole key columns ``verticals`` and diagonals ``i - j`` in ``slashes``.

    Args:
        n: sequence length.
        verticals: key indices in ``[0, n)`` (any iterable of ints or a 1-D int tensor).
        slashes: offsets ``i - j`` in ``[0, n)`` (0 is the main diagonal).
    """
    n = _n(n)
    v = torch.as_tensor(list(verticals) if not isinstance(verticals, torch.Tensor) else verticals, dtype=torch.long)
    s = torch.as_tensor(list(slashes) if not isinstance(slashes, torch.Tensor) else slashes, dtype=torch.long)
    for name, t in (("verticals", v), ("slashes", s)):
        if t.dim() != 1 or (t.numel() and (int(t.min()) < 0 or int(t.max()) >= n)):
            raise ValueError(f"{name} must be a 1-D set of integers in [0, {n})")
    i, j = _grid(n)
    col = torch.zeros(n, dtype=torch.bool)
    col[v] = True
    diag = torch.zeros(n, dtype=torch.bool)
    diag[s] = True
    causal = j <= i
    return causal & (col[None, :].expand(n, n) | diag[(i - j).clamp(min=0)])


def topk_mask(scores: torch.Tensor, k: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(*, N, M)`` bool: each row's ``k`` largest ``scores`` among the entries ``mask`` allows
    (all when None); a row with fewer allowed entries keeps all of them. Ties: lower index."""
    if not isinstance(scores, torch.Tensor) or scores.dim() < 2 or not scores.is_floating_point():
        raise ValueError("scores must be a float tensor (*, N, M)")
    k = checks.integer(k, "k", lo=1, hi=scores.shape[-1])
    s = scores.detach()
    if mask is not None:
        s = s.masked_fill(~torch.broadcast_to(mask, s.shape), float("-inf"))
    # stable descending sort: equal scores keep the lower index first
    order = s.argsort(dim=-1, descending=True, stable=True)[..., :k]
    keep = torch.zeros(s.shape, dtype=torch.bool).scatter_(-1, order, True)
    return keep & torch.isfinite(s)


def block_topk_mask(scores: torch.Tensor, k: int, *, causal: bool = False) -> torch.Tensor:
    """``(nq, nk)`` bool: for each query block the ``k`` key blocks of largest score.

    With ``causal``, key blocks after the query block (``kb > qb``) are never chosen and a row
    keeps ``min(k, qb + 1)`` blocks. Ties go to the lower key block.

    Args:
        scores: ``(nq, nk)`` float block scores (e.g. pooled query-key products).
        k: blocks per query block, ``1 <= k <= nk``.
    """
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2 or not scores.is_floating_point():
        raise ValueError("scores must be a float tensor (n_query_blocks, n_key_blocks)")
    nq, nk = scores.shape
    allowed = torch.arange(nk)[None, :] <= torch.arange(nq)[:, None] if causal else None
    return topk_mask(scores, k, allowed)


def expand_blocks(block_mask: torch.Tensor, block: int, n: int | None = None) -> torch.Tensor:
    """``(n, n)`` token mask of an ``(nb, nb)`` block mask with ``block`` tokens per block,
    cropped to ``n`` (default ``nb * block``)."""
    if not isinstance(block_mask, torch.Tensor) or block_mask.dim() != 2 or block_mask.dtype != torch.bool:
        raise ValueError("block_mask must be a 2-D bool tensor")
    b = checks.positive_int(block, "block")
    full = block_mask.repeat_interleave(b, 0).repeat_interleave(b, 1)
    if n is None:
        return full
    n = _n(n)
    if n > full.shape[0] or n > full.shape[1]:
        raise ValueError(f"n = {n} exceeds the {tuple(full.shape)} tokens the blocks cover")
    return full[:n, :n]


def blocks_of(mask: torch.Tensor, block: int) -> torch.Tensor:
    """``(ceil(n / block), ceil(n / block))`` bool: blocks holding at least one kept entry of
    the ``(n, n)`` token ``mask`` (the last block may be partial)."""
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2 or mask.dtype != torch.bool:
        raise ValueError("mask must be a 2-D bool tensor")
    b = checks.positive_int(block, "block")
    nq, nk = -(-mask.shape[0] // b), -(-mask.shape[1] // b)
    padded = torch.zeros(nq * b, nk * b, dtype=torch.bool)
    padded[:mask.shape[0], :mask.shape[1]] = mask
    return padded.reshape(nq, b, nk, b).any(dim=3).any(dim=1)


def density(mask: torch.Tensor, *, causal: bool = True) -> float:
    """Kept entries over those of dense attention (causal: ``n (n + 1) / 2``; else ``n^2``)."""
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        raise ValueError("mask must be a square 2-D tensor")
    n = mask.shape[0]
    total = n * (n + 1) // 2 if causal else n * n
    return int(mask.sum()) / total


def hop_distance(mask: torch.Tensor) -> torch.Tensor:
    """``(n, n)`` float: ``[i, j]`` is the fewest attention steps (layers) that carry key
    ``j``'s information to query ``i``; 0 on the diagonal, ``inf`` when no path exists.

    ``mask (n, n)`` bool is read as a directed graph with an edge ``j -> i`` when query ``i``
    attends to key ``j``; the distances are ``scipy.sparse.csgraph.shortest_path``'s
    (breadth-first, unweighted). After ``L`` layers of the pattern, query ``i`` can depend on
    key ``j`` only where ``hop_distance <= L`` (zaheer2020big's graph view of attention).
    """
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.dim() != 2 \
            or mask.shape[0] != mask.shape[1] or mask.shape[0] == 0:
        raise ValueError("mask must be a non-empty square bool tensor (n, n)")
    import numpy as np
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    # shortest_path(G)[a, b] follows edges a -> b; with G = mask, an edge i -> j exists when i
    # attends to j, so its [i, j] is the steps from key j to query i read backwards
    dist = shortest_path(csr_matrix(mask.numpy().astype(np.int8)), unweighted=True, directed=True)
    return torch.from_numpy(dist)


def diameter(mask: torch.Tensor, *, causal: bool = False) -> float:
    """The largest number of attention steps any token needs to reach any other: the largest
    :func:`hop_distance` over the ordered pairs ``(i, j)``, ``i != j`` (only ``j < i`` when
    ``causal``). ``inf`` when some pair is not connected at all. Apply it to a block mask for
    the block graph.

    ``mask (n, n)`` bool, True = query ``i`` attends to key ``j``.
    """
    dist = hop_distance(mask)
    n = mask.shape[0]
    i, j = _grid(n)
    pairs = (j < i) if causal else (i != j)
    return float(dist[pairs].max()) if bool(pairs.any()) else 0.0
