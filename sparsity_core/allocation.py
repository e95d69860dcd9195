"""Layer-wise sparsity budgets: how many weights each layer keeps at a global density.

Every function is pure: it takes ``shapes`` (name -> weight shape, see
:func:`layer_shapes`) and returns ``{name: density}``, the fraction each layer keeps, with
the parameter budget met exactly (up to float rounding):

.. math:: \\sum_l d_l N_l = d \\sum_l N_l, \\qquad N_l = \\prod \\mathrm{shape}_l .

Turn a density into a mask with ``sparsity_core.masks.topk_mask`` / ``random_mask``; each
layer then keeps ``round(N_l d_l)`` weights, so the total can differ from ``d * N`` by
at most half a weight per layer.

Shapes use PyTorch's layout: Linear ``(D_out, D_in)``, convolution ``(C_out, C_in, *K)``.

References (keys in ``book/references.bib``): mocanu2018scalable (Erdos-Renyi, SET),
evci2020rigging (ERK with the kernel dimensions, dense-layer capping). Checked against
google-research/rigl ``rigl/sparse_utils.py::get_sparsities_erdos_renyi`` (not copied).

Taught in: Chapter 2, "Pruning I"; used again in Chapter 4 (dynamic sparse training).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from . import checks
from .masks import resolve_density

__all__ = ["layer_shapes", "uniform_densities", "ERKAllocation", "erdos_renyi_allocation",
           "erdos_renyi_densities", "PRUNABLE"]

#: Module types whose ``weight`` is pruned by default. Biases, norms and embeddings are
#: left dense, as in RigL and open_lth (their parameters are few or not matrices).
PRUNABLE: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Relative slack before a layer's ER density counts as above 1 (float rounding of eps).
_CAP_TOL = 1e-12


def layer_shapes(model: nn.Module, include: tuple[type[nn.Module], ...] = PRUNABLE, *,
                 exclude: Iterable[str] = ()) -> dict[str, torch.Size]:
    """Prunable weights of ``model``: ``{'fc1.weight': torch.Size([D_out, D_in]), ...}``.

    Args:
        model: any module (masked or not: a masked weight is listed under its plain name).
        include: module types whose ``weight`` is listed (default :data:`PRUNABLE`).
        exclude: names to leave out (e.g. the first layer, or ``'lm_head.weight'``).

    A weight shared by several modules is listed once, and a weight shared with an
    ``nn.Embedding`` (a tied language-model head) is not listed.

    Raises:
        ValueError: an ``exclude`` name that is not one of the listed weights.
    """
    embedded = {id(_param(m)) for m in model.modules() if isinstance(m, nn.Embedding)}
    seen: set[int] = set()
    out: dict[str, torch.Size] = {}
    for path, module in model.named_modules():
        if not isinstance(module, include) or getattr(module, "weight", None) is None:
            continue
        key = id(_param(module))
        if key in seen or key in embedded:
            continue
        seen.add(key)
        out[f"{path}.weight" if path else "weight"] = module.weight.shape
    exclude = list(exclude)
    unknown = [name for name in exclude if name not in out]
    if unknown:
        raise ValueError(f"exclude names {unknown} are not prunable weights of the model "
                         f"(those are {list(out)})")
    return {name: shape for name, shape in out.items() if name not in exclude}


def _param(module: nn.Module) -> torch.Tensor:
    """The stored ``weight`` tensor (the original when parametrized)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def _sizes(shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    if not isinstance(shapes, Mapping) or not shapes:
        raise ValueError("shapes must be a non-empty mapping name -> shape")
    out = {}
    for name, shape in shapes.items():
        shape = tuple(int(s) for s in shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"shapes[{name!r}] must have positive dimensions (got {shape})")
        out[name] = shape
    return out


def uniform_densities(shapes: Mapping[str, Sequence[int]], density: float | None = None, *,
                      sparsity: float | None = None) -> dict[str, float]:
    """Every layer keeps the same fraction ``density`` (See et al.'s "class-uniform")."""
    d = resolve_density(density, sparsity)
    return {name: d for name in _sizes(shapes)}


@dataclass(frozen=True)
class ERKAllocation:
    """Result of :func:`erdos_renyi_allocation`.

    Attributes:
        densities: name -> density, for every layer (fixed ones included).
        epsilon: the solved scale :math:`\\varepsilon` (inf when every free layer is dense).
        dense: names of the layers capped at density 1, in ``shapes`` order.
    """

    densities: dict[str, float]
    epsilon: float
    dense: tuple[str, ...]


def _raw(shape: tuple[int, ...], kernel: bool, power: float) -> float:
    if kernel:
        return (sum(shape) / math.prod(shape)) ** power
    if len(shape) < 2:
        raise ValueError(f"ER without the kernel needs shapes with >= 2 dims (got {shape}); use kernel=True")
    n_out, n_in = shape[:2]
    return ((n_in + n_out) / (n_in * n_out)) ** power


def erdos_renyi_allocation(shapes: Mapping[str, Sequence[int]], density: float | None = None, *,
                           sparsity: float | None = None, kernel: bool = True, power: float = 1.0,
                           fixed: Mapping[str, float] | None = None) -> ERKAllocation:
    """Erdos-Renyi (``kernel=False``) or Erdos-Renyi-Kernel (``kernel=True``) densities.

    .. math::

        d_l = \\varepsilon\\, r_l, \\qquad
        r_l^{\\mathrm{ERK}} = \\Big(\\frac{\\sum_i s_{l,i}}{\\prod_i s_{l,i}}\\Big)^{p}, \\qquad
        r_l^{\\mathrm{ER}} = \\Big(\\frac{n_\\mathrm{in} + n_\\mathrm{out}}
                                    {n_\\mathrm{in}\\, n_\\mathrm{out}}\\Big)^{p}

    with :math:`\\varepsilon` solving :math:`\\sum_{l \\notin D} \\varepsilon r_l N_l +
    \\sum_{l \\in D} N_l = d \\sum_l N_l`, where :math:`D` is the set of layers made dense.
    Capping (RigL): any layer with :math:`\\varepsilon r_l > 1` joins :math:`D` and
    :math:`\\varepsilon` is re-solved, until no density exceeds 1. For a Linear layer both
    ratios are :math:`(n_\\mathrm{in} + n_\\mathrm{out}) / (n_\\mathrm{in} n_\\mathrm{out})`
    (mocanu2018scalable); ERK adds the kernel sizes of convolutions (evci2020rigging).

    Args:
        shapes: name -> weight shape (PyTorch layout, see :func:`layer_shapes`).
        density: overall fraction kept, in (0, 1]; or ``sparsity`` in [0, 1).
        kernel: ERK (all dimensions) or ER (the first two: ``C_out, C_in``).
        power: exponent :math:`p` on the ratio (RigL's ``erk_power_scale``; < 1 is softer).
        fixed: name -> density for layers left out of the ER scaling; as in RigL's
            ``custom_sparsity_map``, the budget is then met over the *other* layers.

    Returns:
        :class:`ERKAllocation`: densities (capped layers exactly 1.0), epsilon, dense names.

    Notes:
        Differences from ``get_sparsities_erdos_renyi``: (i) the budget is the real number
        :math:`d N_l` rather than RigL's ``N_l - floor((1 - d) N_l)`` per layer, so it is met
        to float precision (the two differ by less than one weight per layer); (ii) every
        layer above 1 is capped at once rather than only the largest-ratio one per pass:
        capping a layer with :math:`\\varepsilon r_l > 1` can only raise :math:`\\varepsilon`,
        so both loops reach the same set; (iii) ``power`` also applies to ER (RigL applies
        it to ERK only); (iv) PyTorch's ``(C_out, C_in, *K)`` layout, so ER uses the first
        two dimensions where RigL (TF layout) uses the last two.
    """
    d = resolve_density(density, sparsity)
    sizes = _sizes(shapes)
    checks.real(power, "power", lo=0.0, closed_low=False)
    fixed = dict(fixed or {})
    unknown = set(fixed) - set(sizes)
    if unknown:
        raise ValueError(f"fixed names {sorted(unknown)} are not in shapes")
    for name, value in fixed.items():
        checks.fraction(value, f"fixed[{name!r}]")
    numel = {name: math.prod(shape) for name, shape in sizes.items()}
    raw = {name: _raw(shape, kernel, power) for name, shape in sizes.items() if name not in fixed}
    if not raw:
        raise ValueError("every layer is fixed; nothing to allocate")
    budget = d * sum(numel[name] for name in raw)
    dense: set[str] = set()
    while True:
        free = [name for name in raw if name not in dense]
        if not free:
            epsilon = math.inf
            break
        rhs = budget - sum(numel[name] for name in dense)
        epsilon = rhs / sum(raw[name] * numel[name] for name in free)
        over = [name for name in free if epsilon * raw[name] > 1 + _CAP_TOL]
        if not over:
            break
        dense.update(over)
    densities = {}
    for name in sizes:
        if name in fixed:
            densities[name] = float(fixed[name])
        elif name in dense or epsilon == math.inf:
            densities[name] = 1.0
        else:
            densities[name] = min(1.0, epsilon * raw[name])
    return ERKAllocation(densities, epsilon, tuple(name for name in sizes if name in dense))


def erdos_renyi_densities(shapes: Mapping[str, Sequence[int]], density: float | None = None, *,
                          sparsity: float | None = None, kernel: bool = True, power: float = 1.0,
                          fixed: Mapping[str, float] | None = None) -> dict[str, float]:
    """``erdos_renyi_allocation(...).densities``: name -> density (see there)."""
    return erdos_renyi_allocation(shapes, density, sparsity=sparsity, kernel=kernel, power=power,
                                  fixed=fixed).densities
