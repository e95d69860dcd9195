"""Binary masks: how to choose them (top-k, threshold, random, N:M, block), how to count
them, and how to put them on a model so that masked weights stay exactly zero.

Conventions. A mask is a ``torch.bool`` tensor shaped like the weight it masks; True keeps.
Scores are "higher is better" unless ``largest=False``. Masks are chosen by **exact
count**: a tensor of ``numel`` entries at density ``d`` keeps
:func:`keep_count` ``(numel, d) = round(numel * d)`` entries (halves round up), so a
``(30, 4)`` mask at 0.5 has exactly 60 ones. Ties are broken by position: among equal
scores the entry with the lower (row-major, flattened) index wins, so masks are
deterministic. Dimension letters: a Linear weight is ``(D_out, D_in)``; a convolution
weight ``(C_out, C_in, *K)``.

Application. :func:`apply_masks` registers a :class:`Mask` parametrization
(``torch.nn.utils.parametrize``, the same mechanism as torch.ao.pruning's
``FakeSparsity``): ``module.weight`` then reads ``where(mask, original, 0)``, the optimizer
updates ``module.parametrizations.weight.original``, and the gradient reaching the
original is exactly zero where the mask is False. Guarantees (tested through
``sparsity_core.training.fit`` with SGD + momentum + weight decay and AdamW):

* the effective weight is exactly 0 at masked entries, whatever the optimizer does;
* the original is zeroed at masked entries when a mask is applied or updated, and then
  stays exactly 0 *if the optimizer's state there is zero too*: zero gradient, zero
  weight and zero momentum / Adam moments give a zero update. The state is zero when the
  optimizer is created after the masks; when masks change mid-training, pass the
  optimizer (``apply_masks(..., optimizer=opt)``) or call :func:`zero_masked_state_`,
  otherwise stale momentum keeps moving the hidden original (harmless while masked, but
  a later mask update would revive those weights at non-zero values; see the tests).

References (keys in ``book/references.bib``): han2015learning (magnitude masks),
zhou2021learning (N:M), gray2017gpu (block sparsity), evci2020rigging (exact-count masks,
zero momentum for masked weights). torch.ao.pruning ``sparsifier/utils.py::FakeSparsity``
and ``BaseSparsifier.squash_mask`` are the API shapes borrowed (checked, not copied).

Taught in: Chapter 2, "Pruning I".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from . import checks

__all__ = [
    "keep_count", "topk_mask", "threshold_mask", "global_topk_masks", "random_mask",
    "nm_mask", "block_mask", "pattern_mask",
    "TensorCount", "SparsityReport", "sparsity_report", "sparsity", "density",
    "Mask", "apply_masks", "update_mask", "remove_masks", "current_masks", "zero_masked_state_",
    "resolve_density", "as_bool_mask", "topk_rows", "locate_tensor", "masked_tensors",
]

#: Digits kept when snapping ``numel * density`` before rounding, so float noise such as
#: ``30 * (1 - 0.55) = 13.499999999999998`` does not decide a half-way case (13.5 -> 14).
_SNAP_DIGITS = 9


# --------------------------------------------------------------------------- validation
def resolve_density(density: float | None, sparsity: float | None) -> float:
    """The density meant by a ``density | sparsity`` argument pair, of which exactly one is given.

    Args:
        density: fraction kept, in (0, 1]; or None.
        sparsity: fraction removed, in [0, 1); or None.

    Returns:
        ``density``, or ``1 - sparsity``, as a float.

    Raises:
        ValueError: both or neither given, or the one given out of its range (or not finite).
        TypeError: the one given is not a real number.
    """
    if (density is None) == (sparsity is None):
        raise ValueError(f"give exactly one of density and sparsity (got density={density!r}, "
                         f"sparsity={sparsity!r})")
    if sparsity is not None:
        return 1.0 - checks.fraction(sparsity, "sparsity", closed_high=False)
    return checks.fraction(density, "density", closed_low=False)


def _finite_scores(scores: object, name: str) -> torch.Tensor:
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (got {type(scores).__name__})")
    if scores.is_complex() or scores.dtype == torch.bool:
        raise TypeError(f"{name} must be a real tensor (got dtype {scores.dtype})")
    if scores.is_floating_point():
        bad = int((~torch.isfinite(scores)).sum())
        if bad:
            raise ValueError(f"{name} must be finite (got {bad} NaN/inf entries of {scores.numel()})")
    return scores.detach()


def as_bool_mask(mask: object, name: str, shape: torch.Size) -> torch.Tensor:
    """``mask`` as a bool tensor of shape ``shape``; a 0/1 tensor of another dtype is converted.

    Args:
        mask: a tensor shaped ``shape`` (any shape), bool or holding only 0 and 1.
        name: the argument's name, for the error message.
        shape: the shape required (the shape of the weight it masks).

    Returns:
        ``mask`` itself if it is already bool, else ``mask != 0``.

    Raises:
        TypeError: ``mask`` is not a tensor.
        ValueError: the shape differs, or a non-bool mask holds values other than 0 and 1.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (got {type(mask).__name__})")
    if mask.shape != shape:
        raise ValueError(f"{name} has shape {tuple(mask.shape)}, expected {tuple(shape)}")
    if mask.dtype != torch.bool:
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"{name} must be boolean or hold only 0 and 1")
        mask = mask != 0
    return mask


def keep_count(numel: int, density: float) -> int:
    """Entries kept out of ``numel`` at ``density``: ``round(numel * density)``, halves up."""
    return int(math.floor(round(numel * density, _SNAP_DIGITS) + 0.5))


# --------------------------------------------------------------------------- selection
def topk_rows(rows: torch.Tensor, k: int, largest: bool = True,
              allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Bool mask ``(R, L)`` of the ``k`` best entries of each row of ``rows`` ``(R, L)``; ties by
    index (the lower column wins); entries outside ``allowed`` (bool ``(R, L)``, or None) are
    never chosen. No checks: the caller passes finite scores and makes sure that every row
    allows at least ``k`` (``k <= 0`` keeps nothing, ``k >= L`` keeps every entry).

    Linear time: the k-th best value of each row is found with ``torch.kthvalue``, every
    entry strictly better is kept, and the remaining places go to the entries equal to it,
    in column order. This is what a stable sort followed by "keep the first k" gives, without
    the sort (a 1536 x 576 layer: ~10x faster).
    """
    R, L = rows.shape
    if k <= 0 or L == 0:
        return torch.zeros(R, L, dtype=torch.bool, device=rows.device)
    s = rows.to(torch.float64) if largest else -rows.to(torch.float64)
    if allowed is not None:
        s = s.masked_fill(~allowed, -math.inf)
    if k >= L:
        return torch.ones(R, L, dtype=torch.bool, device=rows.device)
    thr = torch.kthvalue(s, L - k + 1, dim=-1, keepdim=True).values           # (R, 1)
    better = s > thr
    tied = s == thr
    need = k - better.sum(-1, keepdim=True)                                  # (R, 1)
    return better | (tied & (torch.cumsum(tied, dim=-1) <= need))


def topk_mask(scores: torch.Tensor, density: float | None = None, *, sparsity: float | None = None,
              largest: bool = True, dim: int | None = None,
              allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Keep the ``round(n * density)`` best-scoring entries (exact count, ties by index).

    Args:
        scores: any shape, finite.
        density: fraction kept, in (0, 1]; or give ``sparsity`` in [0, 1) instead.
        largest: keep the largest scores (default) or the smallest.
        dim: None compares all entries of the tensor ("layer-wise"); an int compares
            within each slice along ``dim`` and keeps ``round(scores.shape[dim] * density)``
            per slice (``dim=-1`` on a ``(D_out, D_in)`` weight: per output row, Wanda's
            comparison group, sun2024simple).
        allowed: optional bool mask shaped like ``scores``: only these entries may be
            kept (a pruner passes the current mask, so pruning never revives weights).

    Returns:
        Bool tensor shaped like ``scores``.

    Raises:
        ValueError: bad density/sparsity, non-finite scores, or fewer allowed entries
            than the count to keep.
    """
    scores = _finite_scores(scores, "scores")
    d = resolve_density(density, sparsity)
    shape = scores.shape
    allowed = None if allowed is None else as_bool_mask(allowed, "allowed", shape).to(scores.device)
    if dim is None:
        rows = scores.reshape(1, -1)
        allowed_rows = None if allowed is None else allowed.reshape(1, -1)
    else:
        if scores.dim() == 0:
            raise ValueError("dim must be None for a 0-d scores tensor")
        moved = scores.movedim(dim, -1).shape
        rows = scores.movedim(dim, -1).reshape(-1, moved[-1])
        allowed_rows = None if allowed is None else allowed.movedim(dim, -1).reshape(-1, moved[-1])
    k = keep_count(rows.shape[-1], d)
    if allowed_rows is not None:
        have = int(allowed_rows.sum(-1).min()) if rows.numel() else 0
        if have < k:
            where = " in some slice" if dim is not None else ""
            raise ValueError(f"allowed has only {have} True entries{where}, "
                             f"fewer than the {k} to keep at density {d:g}")
    mask = topk_rows(rows, k, largest, allowed_rows)
    if dim is None:
        return mask.reshape(shape)
    return mask.reshape(moved).movedim(-1, dim)


def threshold_mask(scores: torch.Tensor, threshold: float, *, largest: bool = True) -> torch.Tensor:
    """Keep entries with ``scores > threshold`` (or ``< threshold`` when ``largest=False``).

    The count is whatever the threshold gives; use :func:`topk_mask` for an exact count.
    """
    scores = _finite_scores(scores, "scores")
    if isinstance(threshold, bool) or not isinstance(threshold, (Real, torch.Tensor)) \
            or not math.isfinite(float(threshold)):
        raise ValueError(f"threshold must be a finite number (got threshold={threshold!r})")
    return scores > threshold if largest else scores < threshold


def global_topk_masks(scores: Mapping[str, torch.Tensor], density: float | None = None, *,
                      sparsity: float | None = None, largest: bool = True,
                      allowed: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """One class-blind top-k over all tensors: keep ``round(N * density)`` entries in total,
    ``N`` the summed size (See et al.'s "class-blind"; open_lth ``sparse_global``).

    Ties break by the order of ``scores`` (dict order), then by index. ``allowed`` as in
    :func:`topk_mask`, per name. Layers may end up with very different densities, or
    entirely pruned: that is the point of global pruning.
    """
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores must be a non-empty mapping name -> tensor")
    flat = [_finite_scores(s, f"scores[{name!r}]").reshape(-1) for name, s in scores.items()]
    if len({f.dtype for f in flat}) > 1:
        flat = [f.double() for f in flat]
    ok = None
    if allowed is not None:
        missing = set(scores) - set(allowed)
        if missing:
            raise ValueError(f"allowed lacks masks for {sorted(missing)}")
        ok = torch.cat([as_bool_mask(allowed[n], f"allowed[{n!r}]", s.shape).reshape(-1)
                        for n, s in scores.items()])
    cat = torch.cat(flat)
    mask = topk_mask(cat, density, sparsity=sparsity, largest=largest, allowed=ok)
    return {name: m.reshape(s.shape) for (name, s), m in
            zip(scores.items(), mask.split([f.numel() for f in flat]))}


def random_mask(shape: Sequence[int], density: float | None = None, *, sparsity: float | None = None,
                generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> torch.Tensor:
    """A uniformly random mask with exactly ``round(n * density)`` ones (RigL's
    ``get_mask_random``, mocanu2018scalable, liu2022unreasonable). Draws one
    ``torch.randperm`` from ``generator`` (the global RNG if None)."""
    d = resolve_density(density, sparsity)
    shape = torch.Size(shape)
    n = shape.numel()
    keep = torch.randperm(n, generator=generator)[:keep_count(n, d)]
    mask = torch.zeros(n, dtype=torch.bool)
    mask[keep] = True
    return mask.reshape(shape).to(device) if device is not None else mask.reshape(shape)


def nm_mask(scores: torch.Tensor, n: int, m: int, dim: int = -1) -> torch.Tensor:
    """N:M mask: keep the ``n`` best scores in every group of ``m`` consecutive entries
    along ``dim`` (zhou2021learning; 2:4 is NVIDIA's sparse tensor-core format).

    ``dim=-1`` on a ``(D_out, D_in)`` weight groups along the input dimension, as the
    hardware and SparseGPT/Wanda do. Ties break by position within the group.

    Raises:
        ValueError: ``n > m``, non-positive ``n``/``m``, ``scores.shape[dim]`` not divisible
            by ``m``, or non-finite scores.
        TypeError: ``n`` or ``m`` not an int.
    """
    scores = _finite_scores(scores, "scores")
    n, m = checks.positive_int(n, "n"), checks.positive_int(m, "m")
    if n > m:
        raise ValueError(f"n must be <= m (got n={n}, m={m})")
    if scores.dim() == 0:
        raise ValueError("scores must have at least one dimension")
    size = scores.shape[dim]
    if size % m:
        raise ValueError(f"scores.shape[{dim}] = {size} is not divisible by m={m}")
    moved = scores.movedim(dim, -1)
    groups = moved.reshape(-1, m)
    mask = topk_rows(groups, n)
    return mask.reshape(moved.shape).movedim(-1, dim)


def pattern_mask(scores: torch.Tensor, *, sparsity: float | None = None,
                 nm: tuple[int, int] | None = None, scope: str = "layer") -> torch.Tensor:
    """The mask of one one-shot pruning pattern: unstructured at ``sparsity``, or N:M.

    The selection step shared by the one-shot pruners of Chapter 3 (magnitude, Wanda):

    * ``sparsity=s, scope="layer"``: keep the ``round((1 - s) * numel)`` best scores of the
      whole tensor (SparseGPT's ``--gmp`` magnitude baseline compares a layer at once);
    * ``sparsity=s, scope="row"``: keep ``round((1 - s) * D_in)`` per output row
      (``dim=-1``), Wanda's comparison group (sun2024simple, Sec. 3);
    * ``nm=(n, m)``: keep the ``n`` best of every ``m`` consecutive entries along the input
      dimension, :func:`nm_mask` (2:4 = ``nm=(2, 4)``, 50 %).

    Args:
        scores: ``(D_out, D_in)`` (any shape with ``scope="layer"``), finite, higher = keep.

    Raises:
        ValueError: not exactly one of ``sparsity`` / ``nm``, a sparsity outside [0, 1),
            a bad N:M (see :func:`nm_mask`), or an unknown ``scope``.
    """
    if (sparsity is None) == (nm is None):
        raise ValueError("give exactly one of sparsity and nm (got "
                         f"sparsity={sparsity!r}, nm={nm!r})")
    if scope not in ("layer", "row"):
        raise ValueError(f"scope must be 'layer' or 'row' (got scope={scope!r})")
    if nm is not None:
        n, m = nm
        return nm_mask(scores, n, m, dim=-1)
    return topk_mask(scores, sparsity=sparsity, dim=None if scope == "layer" else -1)


def block_mask(scores: torch.Tensor, block: tuple[int, int], density: float | None = None, *,
               sparsity: float | None = None, norm: str = "l1") -> torch.Tensor:
    """Keep whole ``(bh, bw)`` blocks of a 2-D score matrix (gray2017gpu; the layout of
    ``torch.sparse`` BSR).

    Each block is scored by the L1 (``sum |s|``) or L2 (``sqrt(sum s^2)``) norm of its
    entries; ``round(n_blocks * density)`` blocks are kept (ties by block index, row-major).

    Raises:
        ValueError: scores not 2-D, a shape not divisible by the block, bad norm/density.
    """
    scores = _finite_scores(scores, "scores")
    if scores.dim() != 2:
        raise ValueError(f"scores must be 2-D (got shape {tuple(scores.shape)})")
    if not isinstance(block, (tuple, list)) or len(block) != 2:
        raise ValueError(f"block must be a pair (bh, bw) (got block={block!r})")
    bh, bw = checks.positive_int(block[0], "block[0]"), checks.positive_int(block[1], "block[1]")
    rows, cols = scores.shape
    if rows % bh or cols % bw:
        raise ValueError(f"scores shape {(rows, cols)} is not divisible by block {(bh, bw)}")
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be 'l1' or 'l2' (got norm={norm!r})")
    tiles = scores.double().reshape(rows // bh, bh, cols // bw, bw)
    block_scores = tiles.abs().sum((1, 3)) if norm == "l1" else tiles.square().sum((1, 3)).sqrt()
    keep = topk_mask(block_scores, density, sparsity=sparsity)
    return keep.repeat_interleave(bh, 0).repeat_interleave(bw, 1)


# --------------------------------------------------------------------------- accounting
class _DensityOf:
    """``density`` and ``sparsity`` from a ``numel`` and a ``nonzero`` count (0 when empty)."""

    numel: int
    nonzero: int

    @property
    def density(self) -> float:
        return self.nonzero / self.numel if self.numel else 0.0

    @property
    def sparsity(self) -> float:
        return (self.numel - self.nonzero) / self.numel if self.numel else 0.0


@dataclass(frozen=True)
class TensorCount(_DensityOf):
    """Nonzero count of one tensor (a True of a bool mask counts as nonzero)."""

    name: str
    numel: int
    nonzero: int


@dataclass(frozen=True)
class SparsityReport(_DensityOf):
    """Exact per-tensor and overall counts; ``density = nonzero / numel`` overall."""

    tensors: tuple[TensorCount, ...]

    @property
    def numel(self) -> int:
        return sum(t.numel for t in self.tensors)

    @property
    def nonzero(self) -> int:
        return sum(t.nonzero for t in self.tensors)

    def __getitem__(self, name: str) -> TensorCount:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def to_frame(self) -> "pandas.DataFrame":
        """One row per tensor plus a ``total`` row: name, numel, nonzero, density, sparsity."""
        import pandas as pd   # only here: importing the masks module stays light

        rows = [(t.name, t.numel, t.nonzero, t.density, t.sparsity) for t in self.tensors]
        rows.append(("total", self.numel, self.nonzero, self.density, self.sparsity))
        return pd.DataFrame(rows, columns=["name", "numel", "nonzero", "density", "sparsity"])


def sparsity_report(tensors: torch.Tensor | Mapping[str, torch.Tensor]) -> SparsityReport:
    """Count nonzeros in a tensor or a mapping of tensors (masks or weights).

    On weights, a kept weight that happens to be exactly 0 counts as zero; count the
    masks (:func:`current_masks`) to count the connectivity instead.
    """
    items = {"tensor": tensors} if isinstance(tensors, torch.Tensor) else tensors
    if not isinstance(items, Mapping):
        raise TypeError(f"expected a tensor or a mapping of tensors (got {type(tensors).__name__})")
    return SparsityReport(tuple(TensorCount(str(name), t.numel(), int(torch.count_nonzero(t.detach())))
                                for name, t in items.items()))


def sparsity(tensors: torch.Tensor | Mapping[str, torch.Tensor]) -> float:
    """Fraction of zero entries, over all tensors together (exact counts)."""
    return sparsity_report(tensors).sparsity


def density(tensors: torch.Tensor | Mapping[str, torch.Tensor]) -> float:
    """Fraction of nonzero entries, over all tensors together (exact counts)."""
    return sparsity_report(tensors).density


# --------------------------------------------------------------------------- parametrization
class Mask(nn.Module):
    """Parametrization ``weight -> where(mask, weight, 0)`` with the mask as a buffer.

    ``torch.where`` rather than ``weight * mask``: the masked output and its gradient are
    exactly 0 even where the weight or the incoming gradient is inf/NaN. The mask is a
    persistent buffer (saved in the model's ``state_dict``), unlike torch.ao's
    ``FakeSparsity``, which hides it; change it in place (:func:`update_mask`).
    """

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", as_bool_mask(mask, "mask", mask.shape).clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask, weight, weight.new_zeros(()))


def locate_tensor(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module that owns the tensor ``name`` (``'fc1.weight'``) of ``model``, and the
    tensor's attribute name there: ``(model.fc1, 'weight')``.

    Raises:
        ValueError: ``name`` is not a non-empty str, names no module of ``model``, or names
            an attribute that is not a tensor.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"mask names must be tensor paths such as 'fc1.weight' (got {name!r})")
    module_path, _, tensor = name.rpartition(".")
    try:
        module = model.get_submodule(module_path)
    except AttributeError:
        raise ValueError(f"no module {module_path!r} in the model for mask {name!r}") from None
    if not isinstance(getattr(module, tensor, None), torch.Tensor):
        raise ValueError(f"{name!r} is not a tensor of the model")
    return module, tensor


def _mask_module(module: nn.Module, tensor: str) -> Mask | None:
    if not parametrize.is_parametrized(module, tensor):
        return None
    found = [p for p in module.parametrizations[tensor] if isinstance(p, Mask)]
    return found[0] if found else None


def _original(module: nn.Module, tensor: str) -> torch.Tensor:
    return module.parametrizations[tensor].original


def masked_tensors(model: nn.Module):
    """Yield ``(name, module, tensor, mask_module)`` for every masked tensor of ``model``:
    its full name (``'fc1.weight'``), the module that owns it, the tensor's attribute name
    there, and its :class:`Mask` parametrization (the bool mask, shaped like the tensor, is
    ``mask_module.mask``)."""
    for path, module in model.named_modules():
        if parametrize.is_parametrized(module):
            for tensor in module.parametrizations:
                param = _mask_module(module, tensor)
                if param is not None:
                    yield (f"{path}.{tensor}" if path else tensor), module, tensor, param


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor], *,
                optimizer: torch.optim.Optimizer | None = None) -> nn.Module:
    """Put ``masks`` (name such as ``'fc1.weight'`` -> bool mask) on ``model``.

    A tensor without a mask gets a :class:`Mask` parametrization; one that has one gets its
    mask updated (:func:`update_mask`). The original tensor's masked entries are set to 0,
    and, given ``optimizer``, their optimizer state too (:func:`zero_masked_state_`). The
    original ``nn.Parameter`` object is kept, so an existing optimizer still drives it.
    Returns ``model``.
    """
    for name, mask in masks.items():
        module, tensor = locate_tensor(model, name)
        if _mask_module(module, tensor) is not None:
            update_mask(model, name, mask)
            continue
        weight = getattr(module, tensor)
        mask = as_bool_mask(mask, f"masks[{name!r}]", weight.shape).to(weight.device)
        parametrize.register_parametrization(module, tensor, Mask(mask))
        with torch.no_grad():
            _original(module, tensor).masked_fill_(~mask, 0)
    if optimizer is not None:
        zero_masked_state_(optimizer, model)
    return model


def update_mask(model: nn.Module, name: str, new_mask: torch.Tensor, *,
                optimizer: torch.optim.Optimizer | None = None) -> None:
    """Replace the mask of ``name`` in place (the buffer keeps its identity).

    The original is set to 0 where the new mask is False **and where it newly turns True**
    (a grown connection starts at 0, as in RigL's ``generic_mask_update``); a method that
    wants another initial value writes it into the original afterwards. Given
    ``optimizer``, the state of masked entries is zeroed too.
    """
    module, tensor = locate_tensor(model, name)
    param = _mask_module(module, tensor)
    if param is None:
        raise ValueError(f"{name!r} has no mask; use apply_masks first")
    new_mask = as_bool_mask(new_mask, "new_mask", param.mask.shape).to(param.mask.device)
    with torch.no_grad():
        _original(module, tensor).masked_fill_(~(new_mask & param.mask), 0)
        param.mask.copy_(new_mask)
    if optimizer is not None:
        zero_masked_state_(optimizer, model)


def current_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the masks on ``model``, by tensor name (``'fc1.weight'``)."""
    return {name: param.mask.clone() for name, _, _, param in masked_tensors(model)}


def remove_masks(model: nn.Module, *, bake: bool = True) -> nn.Module:
    """Remove every :class:`Mask` (torch.ao's ``squash_mask``).

    ``bake=True`` makes the mask permanent: the plain weight becomes ``where(mask, w, 0)``.
    ``bake=False`` restores the original tensor (whose masked entries were zeroed by
    :func:`apply_masks`, so usually the same values). The ``nn.Parameter`` object is kept.
    A tensor with other parametrizations stacked with the mask raises ValueError.
    """
    for name, module, tensor, _ in list(masked_tensors(model)):
        if len(module.parametrizations[tensor]) != 1:
            raise ValueError(f"{name!r} has other parametrizations besides its Mask; remove them first")
        _own_parametrized_class(module)
        parametrize.remove_parametrizations(module, tensor, leave_parametrized=bake)
    return model


def _own_parametrized_class(module: nn.Module) -> None:
    """Give ``module`` a private copy of its generated parametrized class.

    ``torch.nn.utils.parametrize`` swaps a module's class for a generated subclass holding one
    property per parametrized tensor, and removal deletes the property *from that class*. A
    ``copy.deepcopy`` shares the class with its source, so removing masks from a copy would
    strip the source's weights too; removing from a private copy of the class cannot.
    """
    cls = type(module)
    module.__class__ = type(cls.__name__, cls.__bases__,
                            {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")})


@torch.no_grad()
def zero_masked_state_(optimizer: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
    """Zero, at every masked entry: the original weight, its ``.grad``, and each optimizer
    state tensor shaped like it (SGD ``momentum_buffer``, Adam ``exp_avg``/``exp_avg_sq``/
    ``max_exp_avg_sq``, ...). Scalar state such as Adam's ``step`` is left alone.

    Call it after masks change mid-training (or pass ``optimizer`` to :func:`apply_masks` /
    :func:`update_mask`). As a ``fit`` callback: ``lambda i, m: zero_masked_state_(opt, m)``.
    Returns ``optimizer``.
    """
    for _, module, tensor, param in masked_tensors(model):
        mask = param.mask
        original = _original(module, tensor)
        original.masked_fill_(~mask, 0)
        if original.grad is not None:
            original.grad.masked_fill_(~mask, 0)
        for value in optimizer.state.get(original, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == original.shape:
                value.masked_fill_(~mask, 0)
    return optimizer
