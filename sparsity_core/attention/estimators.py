"""Dynamic sparse attention: choose the keys per query from the data, then attend exactly.

* :func:`~sparsity_core.attention.patterns.topk_mask` / :func:`topk_attention`: each query keeps its ``k`` largest scores (the
  oracle that cheaper estimators approximate; gupta2021memory's top-k attention).
* Loki (singhania2024loki, Sec. 3-4): keys of trained models are low-rank, so scores computed
  in the top-``d`` principal directions of the keys (:func:`pca_basis`, from calibration keys)
  rank the keys almost as the full scores do; :func:`loki_mask` selects with those and
  attention then runs exactly on the selected keys. With ``d = D`` the selection is exact.
* Scatterbrain (chen2021scatterbrain, Sec. 3): a low-rank Performer estimate
  :math:`\\phi(Q)\\phi(K)^\\top` of :math:`\\exp(QK^\\top/\\sqrt{D})` (positive random features,
  choromanski2021rethinking, Lemma 1) plus a sparse correction
  :math:`S = \\exp(QK^\\top/\\sqrt{D}) - \\phi(Q)\\phi(K)^\\top` on a support (e.g. a local window or
  LSH buckets), normalised together; on the full support it is exact attention.
* LSH buckets (kitaev2020reformer, Sec. 2.2, angular LSH): a random rotation ``R (D, b/2)``
  hashes ``x`` to ``argmax([xR, -xR])``; near vectors share a bucket, and attention restricted
  to the bucket (:func:`lsh_mask`) is Reformer's sparse estimate and Scatterbrain's support.
* Routing attention (roy2021efficient, Sec. 4): queries and keys share k-means centroids; a
  query attends to the keys of its own cluster (:func:`kmeans_routing_mask`).

Every estimator returns a boolean mask or an output comparable to
:func:`~sparsity_core.attention.reference.masked_attention`.

Taught in: Chapter 6, "Sparse attention".
"""
from __future__ import annotations

import math

import torch

from .. import checks
from .patterns import topk_mask
from .reference import masked_attention

__all__ = ["topk_attention", "pca_basis", "loki_mask", "positive_random_features",
           "scatterbrain_attention", "kmeans_routing_mask", "recall", "lsh_buckets", "lsh_mask"]


def _scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    if q.dim() < 2 or k.dim() != q.dim() or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q (*, N, D) and k (*, M, D) do not match: {tuple(q.shape)}, {tuple(k.shape)}")
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def topk_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, top: int,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """Exact attention over each query's ``top`` highest-scoring allowed keys (the oracle)."""
    keep = topk_mask(_scores(q, k), top, mask)
    return masked_attention(q, k, v, keep)


def pca_basis(keys: torch.Tensor) -> torch.Tensor:
    """``(D, D)``: the principal directions of calibration ``keys (..., D)`` as columns, by
    decreasing variance (keys centred for the PCA; the basis is applied to raw keys and queries,
    as Loki does, which keeps ``q . k`` exactly when all ``D`` columns are used)."""
    if not isinstance(keys, torch.Tensor) or keys.dim() < 2 or not keys.is_floating_point():
        raise ValueError("keys must be a float tensor (..., D) with at least one row")
    x = keys.reshape(-1, keys.shape[-1]).double()
    x = x - x.mean(dim=0)
    eigvals, eigvecs = torch.linalg.eigh(x.T @ x)                       # ascending
    return eigvecs.flip(-1).to(keys.dtype)


def loki_mask(q: torch.Tensor, k: torch.Tensor, basis: torch.Tensor, d: int, top: int,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(*, N, M)`` bool: the ``top`` keys per query ranked by scores in the first ``d``
    principal directions, :math:`(q P_d)(k P_d)^\\top` (``basis`` from :func:`pca_basis`)."""
    D = q.shape[-1]
    if not isinstance(basis, torch.Tensor) or basis.shape != (D, D):
        raise ValueError(f"basis must be ({D}, {D}) (see pca_basis)")
    d = checks.integer(d, "d", lo=1, hi=D)
    proj = basis[:, :d].to(q.dtype)
    approx = (q @ proj) @ (k @ proj).transpose(-2, -1) / math.sqrt(D)
    return topk_mask(approx, top, mask)


def recall(selected: torch.Tensor, oracle: torch.Tensor) -> float:
    """Fraction of the ``oracle`` mask's entries that ``selected`` also keeps."""
    if selected.shape != oracle.shape or selected.dtype != torch.bool or oracle.dtype != torch.bool:
        raise ValueError("selected and oracle must be bool masks of one shape")
    total = int(oracle.sum())
    return int((selected & oracle).sum()) / total if total else 1.0


def positive_random_features(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``(*, N, m)``: :math:`\\phi(x) = \\exp(w^\\top x - |x|^2 / 2) / \\sqrt{m}`, so that
    :math:`E[\\phi(q)^\\top \\phi(k)] = \\exp(q^\\top k)` for ``w (D, m)`` with i.i.d. N(0, 1)
    entries (choromanski2021rethinking, Lemma 1). Pass ``x`` already scaled by ``D^{-1/4}``
    to estimate :math:`\\exp(q^\\top k / \\sqrt{D})`."""
    if w.dim() != 2 or w.shape[0] != x.shape[-1]:
        raise ValueError(f"w must be (D, m) with D = {x.shape[-1]} (got {tuple(w.shape)})")
    return torch.exp(x @ w - (x * x).sum(dim=-1, keepdim=True) / 2) / math.sqrt(w.shape[1])


def scatterbrain_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, support: torch.Tensor,
                           features: int, *, generator: torch.Generator | None = None,
                           causal: bool = False) -> torch.Tensor:
    """Sparse + low-rank attention (chen2021scatterbrain): Performer estimate plus the exact
    correction on ``support``.

    Args:
        q, k, v: ``(*, N, D)``, ``(*, M, D)``, ``(*, M, Dv)``.
        support: ``(N, M)`` bool (or broadcastable), where the estimate is corrected to exact.
        features: m, random features.
        generator: draws the features.
        causal: mask the low-rank part to ``j <= i`` too (computed densely here: a reference,
            not a fast kernel).

    :math:`\\hat A = \\phi(Q)\\phi(K)^\\top + (E - \\phi(Q)\\phi(K)^\\top) \\odot \\mathrm{support}`
    with :math:`E = \\exp(QK^\\top/\\sqrt D)` (masked causally if asked); output
    :math:`\\hat A V / \\hat A \\mathbf 1`. With ``support`` all True it equals exact attention.
    """
    D = q.shape[-1]
    m = checks.positive_int(features, "features")
    w = torch.randn(D, m, generator=checks.generator(generator), dtype=q.dtype)
    scale = D ** -0.25
    low = positive_random_features(q * scale, w) @ positive_random_features(k * scale, w).transpose(-2, -1)
    exact = torch.exp(_scores(q, k))
    sup = torch.broadcast_to(support, exact.shape)
    a = torch.where(sup, exact, low)                                     # low + (E - low) on the support
    if causal:
        n, mk = exact.shape[-2:]
        a = a * (torch.arange(mk)[None, :] <= torch.arange(n)[:, None])
    return (a @ v) / a.sum(dim=-1, keepdim=True)


def kmeans_routing_mask(q: torch.Tensor, k: torch.Tensor, clusters: int, *, iters: int = 10,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """``(N, M)`` bool: query ``i`` attends to key ``j`` when both are nearest to the same of
    ``clusters`` centroids, learned by spherical k-means on the unit-normalised queries and keys
    together (roy2021efficient's shared routing centroids). ``q (N, D)``, ``k (M, D)``."""
    if q.dim() != 2 or k.dim() != 2 or q.shape[1] != k.shape[1]:
        raise ValueError("q and k must be (N, D) and (M, D)")
    c = checks.integer(clusters, "clusters", lo=1, hi=q.shape[0] + k.shape[0])
    x = torch.nn.functional.normalize(torch.cat([q, k]).double(), dim=1)
    centroids = x[torch.randperm(x.shape[0], generator=checks.generator(generator))[:c]]
    for _ in range(checks.integer(iters, "iters", lo=0)):
        assign = (x @ centroids.T).argmax(dim=1)
        for j in range(c):
            members = x[assign == j]
            if members.shape[0]:
                centroids[j] = torch.nn.functional.normalize(members.sum(dim=0), dim=0)
    assign = (x @ centroids.T).argmax(dim=1)
    qa, ka = assign[:q.shape[0]], assign[q.shape[0]:]
    return qa[:, None] == ka[None, :]


def lsh_buckets(x: torch.Tensor, n_buckets: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(N,)`` int64 in ``[0, n_buckets)``: angular LSH of the rows of ``x (N, D)``
    (kitaev2020reformer Sec. 2.2): ``argmax([x R, -x R])`` for a Gaussian ``R (D, n_buckets / 2)``
    drawn from ``generator``. ``n_buckets`` must be even."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        raise ValueError("x must be a float tensor (N, D)")
    b = checks.positive_int(n_buckets, "n_buckets")
    if b % 2:
        raise ValueError(f"n_buckets must be even (got {b})")
    r = torch.randn(x.shape[1], b // 2, generator=checks.generator(generator), dtype=x.dtype)
    xr = x @ r                                                           # (N, b/2)
    return torch.cat([xr, -xr], dim=1).argmax(dim=1)


def lsh_mask(q: torch.Tensor, k: torch.Tensor, n_buckets: int, *, rounds: int = 1,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """``(N, M)`` bool: query ``i`` and key ``j`` share an LSH bucket in at least one of
    ``rounds`` independent hashings (queries and keys hashed with the same rotation, as
    Reformer's shared-QK attention). ``q (N, D)``, ``k (M, D)``."""
    if q.dim() != 2 or k.dim() != 2 or q.shape[1] != k.shape[1]:
        raise ValueError("q and k must be (N, D) and (M, D)")
    gen = checks.generator(generator)
    keep = torch.zeros(q.shape[0], k.shape[0], dtype=torch.bool)
    for _ in range(checks.positive_int(rounds, "rounds")):
        h = lsh_buckets(torch.cat([q, k]), n_buckets, generator=gen)
        keep |= h[:q.shape[0], None] == h[None, q.shape[0]:]
    return keep
