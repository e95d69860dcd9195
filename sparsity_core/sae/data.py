r"""Data for sparse autoencoders: activations with known features, and real activations.

* :func:`superposition_data` -- :math:`x = \sum_i c_i\,u_i + \sigma\varepsilon`: ``n_features``
  random unit directions :math:`u_i` in :math:`\mathbb{R}^d` (more features than dimensions:
  superposition), each active independently with probability ``p_active`` with magnitude
  :math:`|N(0,1)| + 0.5` (the targets' 6.2 data (A)). ``p_active`` may also be one
  probability per feature, e.g. from :func:`zipf_probabilities`.
* :func:`zipf_probabilities` -- heavy-tailed feature frequencies :math:`p_i = \min(1, c\,i^{-a})`
  with :math:`c` fixed by the expected number of active features: a long tail of ever rarer
  features, in which a wider dictionary keeps finding features a narrower one leaves out
  (gao2024scaling motivate large dictionaries by the many concepts a language model learns; the
  Zipf tail is this book's synthetic stand-in, not their model).
* :func:`hierarchy_data` -- parents with children (targets 6.5, after chanin2024absorption's
  toy setting): a child can only be active with its parent; an active parent has no active
  child a fixed share of the time (``p_alone``) and otherwise exactly one, uniformly; plus
  independent features. Magnitudes :math:`U[0.5, 1.5]`.
* :func:`residual_stream` -- a language model's residual stream after one block, token by
  token (the activations SAEs are trained on), for the book's TinyGPT.
* :func:`normalise` -- mean-centre and scale so that :math:`E\lVert x\rVert^2 = 1` (the
  targets' Sec. 0.2: BERT-family outlier dimensions otherwise confound dead latents; Gemma
  Scope trains on unit mean-square inputs). With it, the summed squared error of the SAE
  losses is about the FVU.

Taught in: Chapter 7, "Sparse autoencoders".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .. import checks

__all__ = ["superposition_data", "zipf_probabilities", "HierarchyData", "hierarchy_data", "normalise", "random_directions",
           "residual_stream"]


#: rows per chunk of :func:`superposition_data`'s activity mask: it bounds the mask's memory, and it is part of
#: the random stream (another value gives other rows for the same seed)
_CHUNK_ROWS = 8192


def random_directions(n: int, d: int, generator: torch.Generator) -> Tensor:
    """``(n, d)`` rows drawn uniformly on the unit sphere."""
    u = torch.randn(checks.positive_int(n, "n"), checks.positive_int(d, "d"), generator=generator)
    return u / u.norm(dim=1, keepdim=True)


def zipf_probabilities(n_features: int, exponent: float, mean_active: float) -> Tensor:
    r"""``(m,)`` feature probabilities :math:`p_i = \min(1, c\,i^{-a})`, :math:`i = 1..m`, with
    :math:`c` chosen so that :math:`\sum_i p_i` = ``mean_active`` (the expected L0 of a row).

    Args:
        n_features: ``m``.
        exponent: ``a > 0``; the larger, the faster frequencies fall.
        mean_active: expected active features per row, in ``(0, m]``.

    Returns:
        ``(m,)`` float32 probabilities, non-increasing in ``i``, summing to ``mean_active``
        (``c`` found by bisection to float64 precision).

    Raises:
        ValueError: ``n_features`` not a positive integer, ``exponent <= 0``, or ``mean_active``
        outside ``(0, m]``.

    Reference: the book's synthetic stand-in for the long tail of concepts that gao2024scaling
    (Sec. 3, scaling laws in the number of latents) cite to motivate wide dictionaries; the
    power law is ours, not a model from that paper.
    """
    m = checks.positive_int(n_features, "n_features")
    a = checks.real(exponent, "exponent", lo=0.0, closed_low=False)
    target = checks.real(mean_active, "mean_active", lo=0.0, hi=float(m), closed_low=False)
    base = torch.arange(1, m + 1, dtype=torch.float64) ** -a

    def total(c: float) -> float:
        return float((c * base).clamp(max=1.0).sum())

    lo, hi = 0.0, float(m) ** a  # total(hi) = m >= target
    for _ in range(200):  # bisection on a continuous, non-decreasing total(c)
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total(mid) < target else (lo, mid)
    return (hi * base).clamp(max=1.0).float()


def superposition_data(n_samples: int, d: int, n_features: int, p_active: float | Tensor, *, noise: float = 0.01,
                       generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Sparse sums of known unit features.

    Args:
        n_samples: rows ``B``.
        d: width.
        n_features: true features ``m`` (may exceed ``d``).
        p_active: each feature's probability of being active on a row: one float for all, or an
            ``(m,)`` tensor (e.g. :func:`zipf_probabilities`); a float and the constant tensor
            draw the same rows.
        noise: std of the added isotropic Gaussian noise.
        generator: the RNG.

    Returns:
        ``(x (B, d), features (m, d))``.
    """
    B, m = checks.positive_int(n_samples, "n_samples"), checks.positive_int(n_features, "n_features")
    if isinstance(p_active, Tensor):
        if p_active.shape != (m,) or not torch.is_floating_point(p_active):
            raise ValueError(f"p_active as a tensor must be float of shape ({m},), got {p_active.dtype} "
                             f"{tuple(p_active.shape)}")
        if not bool(((p_active >= 0) & (p_active <= 1)).all()):
            raise ValueError("p_active must lie in [0, 1]")
        p = p_active.float()
    else:
        p = checks.fraction(p_active, "p_active")
    features = random_directions(m, d, generator)
    rows, cols, mags = [], [], []
    for start in range(0, B, _CHUNK_ROWS):  # rows in chunks: one (chunk, m) mask at a time, magnitudes only where active
        active = torch.rand(min(_CHUNK_ROWS, B - start), m, generator=generator) < p
        r, c = active.nonzero(as_tuple=True)
        rows.append(r + start)
        cols.append(c)
        mags.append(torch.randn(len(r), generator=generator).abs() + 0.5)
    codes = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(mags), (B, m),
                                    is_coalesced=True, check_invariants=False)  # nonzero() is row-major, unique
    x = torch.sparse.mm(codes, features) + noise * torch.randn(B, d, generator=generator)
    return x, features


@dataclass
class HierarchyData:
    """Rows of :func:`hierarchy_data` and the ground truth behind them.

    Attributes:
        x: ``(B, d)`` activations.
        parents: ``(P, d)``, children ``(C, d)``, independent ``(I, d)`` unit directions.
        parent_active: ``(B, P)``, child_active ``(B, C)``, independent_active ``(B, I)`` bool.
        child_parent: ``(C,)`` long, each child's parent.
    """

    x: Tensor
    parents: Tensor
    children: Tensor
    independent: Tensor
    parent_active: Tensor
    child_active: Tensor
    independent_active: Tensor
    child_parent: Tensor

    @property
    def features(self) -> Tensor:
        """``(P + C + I, d)`` every true direction."""
        return torch.cat([self.parents, self.children, self.independent])


def hierarchy_data(n_samples: int, d: int = 64, *, n_parents: int = 8, children_per_parent: int = 8,
                   n_independent: int = 64, p_parent: float = 0.1, p_alone: float = 0.3,
                   p_independent: float = 0.03, generator: torch.Generator) -> HierarchyData:
    """Parent / child features (a child implies its parent) plus independent ones.

    Defaults are the targets' 6.5 setting (d = 64, 8 parents x 8 children, 64 independent
    features, a parent alone 30 % of the time); ``p_parent`` and ``p_independent`` set how
    often features fire.
    """
    B, P, K, I = (checks.positive_int(n_samples, "n_samples"), checks.positive_int(n_parents, "n_parents"),
                  checks.positive_int(children_per_parent, "children_per_parent"), checks.positive_int(n_independent, "n_independent"))
    p_parent, p_alone, p_ind = checks.fraction(p_parent, "p_parent"), checks.fraction(p_alone, "p_alone"), checks.fraction(p_independent, "p_independent")
    dirs = random_directions(P + P * K + I, d, generator)
    parents, children, independent = dirs[:P], dirs[P:P + P * K], dirs[P + P * K:]
    parent_active = torch.rand(B, P, generator=generator) < p_parent
    has_child = parent_active & (torch.rand(B, P, generator=generator) >= p_alone)
    which = torch.randint(K, (B, P), generator=generator)
    child_active = torch.zeros(B, P, K, dtype=torch.bool)
    child_active.scatter_(2, which[..., None], has_child[..., None])
    child_active = child_active.reshape(B, P * K)
    ind_active = torch.rand(B, I, generator=generator) < p_ind

    def mags(active: Tensor) -> Tensor:
        return active * (0.5 + torch.rand(active.shape, generator=generator))

    x = mags(parent_active) @ parents + mags(child_active) @ children + mags(ind_active) @ independent
    return HierarchyData(x=x, parents=parents, children=children, independent=independent,
                         parent_active=parent_active, child_active=child_active, independent_active=ind_active,
                         child_parent=torch.arange(P).repeat_interleave(K))


def normalise(x: Tensor, mean: Tensor | None = None, scale: float | None = None) -> tuple[Tensor, Tensor, float]:
    r"""``((x - mean) / scale, mean, scale)`` with, by default, ``mean`` the column mean and
    ``scale`` such that the centred rows have :math:`E\lVert x\rVert^2 = 1`.

    Pass the training set's ``mean`` and ``scale`` to normalise held-out rows the same way.

    Args:
        x: ``(B, d)``.
    """
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[0] < 1 or not x.is_floating_point():
        raise ValueError("x must be a non-empty floating (B, d) tensor")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    mean = x.mean(0) if mean is None else mean
    centred = x - mean
    if scale is None:
        scale = float(centred.pow(2).sum(1).mean().sqrt())
        if scale == 0:
            raise ValueError("x has zero variance")
    return centred / scale, mean, float(scale)


@torch.no_grad()
def residual_stream(model: torch.nn.Module, windows: Tensor, layer: int, batch_size: int = 64) -> Tensor:
    """The residual stream leaving block ``layer`` of a :class:`~sparsity_core.models.TinyGPT`.

    Args:
        model: a TinyGPT (its ``blocks`` return ``(x, aux)``); run in eval mode here.
        windows: ``(N, T)`` token ids, ``T <= block_size``.
        layer: block index, ``0 <= layer < n_layer``.
        batch_size: windows per forward pass.

    Returns:
        ``(N * T, d)`` float32, row ``i * T + t`` for token ``t`` of window ``i``.
    """
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise TypeError("model must be a TinyGPT (a module with .blocks)")
    checks.integer(layer, "layer", lo=0, hi=len(blocks) - 1)
    if not isinstance(windows, Tensor) or windows.dim() != 2 or windows.dtype != torch.long:
        raise TypeError("windows must be a (N, T) LongTensor of token ids")
    out: list[Tensor] = []
    hook = blocks[layer].register_forward_hook(lambda mod, args, res: out.append(res[0].detach()))
    was = model.training
    model.eval()
    try:
        for chunk in windows.split(checks.positive_int(batch_size, "batch_size")):
            model(chunk)
    finally:
        hook.remove()
        model.train(was)
    return torch.cat(out).reshape(-1, out[0].shape[-1]).float()
