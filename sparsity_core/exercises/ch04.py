"""Checks of Chapter 4's exercises (see :mod:`sparsity_core.exercises`).

``04_dst`` ("Dynamic sparse training"):

* ``rigl_update``: one RigL drop-and-grow update of a single layer's mask, against
  :class:`sparsity_core.dst.RigL` run on a one-layer model;
* ``paired_interval``: the paired seed difference and its 95 % t-interval, against
  :func:`sparsity_core.dst.experiments.paired_difference`.

``04_dst_fast`` ("Dynamic sparse training, part 2"):

* ``wide_layers``: Sparse-IFT's Sparse Wide widths and densities, against
  :func:`sparsity_core.dst.experiments.sparse_wide`;
* ``condensed_row``: one input row through a constant fan-in layer stored condensed, against
  :class:`sparsity_core.dst.CondensedLinear`.
"""
from __future__ import annotations

import numpy as np
import torch

from ..dst import CondensedLinear, RigL, UpdateSchedule, constant_fan_in_mask
from ..dst.experiments import paired_difference, sparse_wide
from ..masks import apply_masks, current_masks, random_mask
from .check import Case, Exercise, run_check

__all__ = ["EXERCISES", "check_rigl_update", "check_paired_interval", "check_wide_layers", "check_condensed_row"]


# --------------------------------------------------------------------------- 04_dst: rigl_update
def _rigl_reference(weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """The package's RigL update of one ``(D_out, D_in)`` layer holding ``weight`` under ``mask``.

    The layer's loss is ``sum(W * grad)``, so the dense gradient RigL grows by is ``grad``
    itself; the schedule ``t_end = 2, delta_t = 1, alpha = 2 * fraction`` makes step 1 an update
    step with drop fraction ``alpha / 2 * (1 + cos(pi / 2))``, which is ``fraction`` exactly in
    floating point (``1 + 6e-17 == 1``); so ``fraction <= 0.5``.
    """
    d_out, d_in = mask.shape
    # skip_init: no draw from the reader's global random state (the weight is overwritten)
    layer = torch.nn.Sequential(torch.nn.utils.skip_init(torch.nn.Linear, d_in, d_out, bias=False))
    with torch.no_grad():
        layer[0].weight.copy_(weight)
    apply_masks(layer, {"0.weight": mask})
    opt = torch.optim.SGD(layer.parameters(), lr=0.0)
    schedule = UpdateSchedule(t_end=2, delta_t=1, alpha=2 * fraction)
    assert schedule.drop_fraction(1) == fraction
    rigl = RigL(layer, opt, schedule)
    (layer[0].weight * grad).sum().backward()
    opt.step()
    rigl.step(1)
    rigl.remove_hooks()
    return current_masks(layer)["0.weight"]


def _rigl_cases() -> list[Case]:
    g = torch.Generator().manual_seed(404)

    def layer(shape, density, *, stored_everywhere=False):
        mask = random_mask(shape, density, generator=g)
        w = torch.randn(shape, generator=g)
        return (w if stored_everywhere else w * mask), torch.randn(shape, generator=g), mask

    w1, g1, m1 = layer((6, 10), 0.5)
    w2, g2, m2 = layer((1, 20), 0.5)
    g2 = torch.where(m2, 0.01 * g2, g2)     # small gradients where active: nothing dropped grows back
    w3, g3, m3 = layer((7, 13), 0.3, stored_everywhere=True)
    w4, g4, m4 = layer((5, 5), 1.0)
    w5, g5, m5 = layer((4, 9), 0.4)
    return [
        Case("a 6 x 10 weight at 50 % density (30 active), fraction 0.3: k = 9", (w1, g1, m1, 0.3)),
        Case("a single row of 20 with 10 active, fraction 0.25: k = 2.5 rounds half up to 3 "
             "(Python's round() would give 2); the active connections have small gradients, "
             "so none of the dropped ones grows back", (w2, g2, m2, 0.25)),
        Case("a 7 x 13 weight at 30 % density whose tensor also holds values at the inactive "
             "positions (only the active ones may be kept), fraction 0.5", (w3, g3, m3, 0.5)),
        Case("a dense 5 x 5 mask, fraction 0.3: the 8 dropped connections are the only ones to "
             "grow, so they all come back", (w4, g4, m4, 0.3)),
        Case("a 4 x 9 weight at 40 % density, fraction 0: the mask does not change", (w5, g5, m5, 0.0)),
    ]


RIGL_UPDATE = Exercise(
    name="rigl_update", chapter="04_dst",
    task="RigL's drop-by-|W|, grow-by-|dL/dW| mask update",
    reference=_rigl_reference, cases=_rigl_cases)


def check_rigl_update(student_fn) -> str:
    """Check ``rigl_update(weight, grad, mask, fraction)`` against :class:`sparsity_core.dst.RigL`.

    The function takes a layer's weight and dense gradient ``dL/dW`` (float ``(D_out, D_in)``),
    its bool ``mask`` and the drop fraction, and returns the new bool mask: with ``n`` active
    connections and ``k = round(fraction * n)`` (halves up), keep the ``n - k`` active ones of
    largest ``|W|`` and grow the ``k`` connections of largest ``|dL/dW|`` among those not kept
    (a dropped one may grow back). evci2020rigging, Algorithm 1; taught in Chapter 4, section
    4.1 "Drop and grow" (``04_dst``).
    """
    return run_check(RIGL_UPDATE, student_fn)


# --------------------------------------------------------------------------- 04_dst: paired_interval
def _paired_reference(a, b) -> tuple[float, float, float]:
    pkg = paired_difference(a, b)
    return pkg.mean, pkg.low, pkg.high


def _paired_cases() -> list[Case]:
    rng = np.random.default_rng(4)
    a5 = 0.9 + 0.01 * rng.standard_normal(5)
    b5 = a5 - 0.004 + 0.003 * rng.standard_normal(5)
    a3, b3 = 0.7 + 0.05 * rng.standard_normal(3), 0.7 + 0.05 * rng.standard_normal(3)
    a2 = np.array([0.955, 0.962])
    b2 = np.array([0.951, 0.949])
    return [
        Case("5 seeds, the first arm about 0.4 pp better", (a5, b5)),
        Case("3 seeds of two arms that differ by chance only", (a3, b3)),
        Case("2 seeds (1 degree of freedom: t = 12.7, a wide interval)", (a2, b2)),
        Case("4 seeds given as plain lists", ([0.91, 0.93, 0.92, 0.95], [0.90, 0.94, 0.90, 0.92])),
    ]


PAIRED_INTERVAL = Exercise(
    name="paired_interval", chapter="04_dst",
    task="the paired seed difference in pp with its 95 % t-interval",
    reference=_paired_reference, cases=_paired_cases)


def check_paired_interval(student_fn) -> str:
    """Check ``paired_interval(a, b)`` against :func:`sparsity_core.dst.experiments.paired_difference`.

    ``a`` and ``b`` hold one accuracy (a fraction) per seed, in the same seed order; the
    function returns ``(mean, low, high)`` of the per-seed differences ``100 * (a - b)`` in
    percentage points: the mean and :math:`\\bar d \\pm t_{0.975,\\,n-1}\\, s_d / \\sqrt{n}`.
    Taught in Chapter 4, section 4.2, where RigL and SET are compared over paired seeds (``04_dst``).
    """
    return run_check(PAIRED_INTERVAL, student_fn)


# --------------------------------------------------------------------------- 04_dst_fast: wide_layers
def _wide_reference(sizes, sparsity):
    wide, densities = sparse_wide(sizes, sparsity)
    return wide, list(densities.values())


def _wide_cases() -> list[Case]:
    return [
        Case("the chapter's MLP 784-64-64-10 at 90 % sparsity", ((784, 64, 64, 10), 0.9)),
        Case("784-64-64-10 at 75 % sparsity (k = 2 exactly)", ((784, 64, 64, 10), 0.75)),
        Case("one hidden layer, 20-7-5, at 50 % sparsity (7 * sqrt(2) = 9.9 -> 10)", ((20, 7, 5), 0.5)),
        Case("four hidden layers 10-3-5-8-1-2 at 60 % sparsity, one hidden unit among them",
             ((10, 3, 5, 8, 1, 2), 0.6)),
        Case("784-64-10 at 0 % sparsity: nothing widens, every density is 1", ((784, 64, 10), 0.0)),
    ]


WIDE_LAYERS = Exercise(
    name="wide_layers", chapter="04_dst_fast",
    task="Sparse Wide widths and per-layer densities at the dense multiply-add count",
    reference=_wide_reference, cases=_wide_cases)


def check_wide_layers(student_fn) -> str:
    """Check ``wide_layers(sizes, sparsity)`` against :func:`sparsity_core.dst.experiments.sparse_wide`.

    ``sizes`` is the dense MLP's ``(D_in, hidden..., D_out)``; the function returns the widened
    sizes (a tuple: every hidden width times :math:`k = 1/\\sqrt{1 - s}`, rounded; input and
    output unchanged) and the list of per-layer densities ``dense_count / wide_count``, so every
    layer keeps the dense number of weights. thangarasa2024sparse (Sparse-IFT); taught in
    Chapter 4b, section 4b.3 "Sparse-IFT" (``04_dst_fast``).
    """
    return run_check(WIDE_LAYERS, student_fn)


# --------------------------------------------------------------------------- 04_dst_fast: condensed_row
def _condensed_reference(x, values, indices, bias):
    layer = CondensedLinear(values, indices, x.shape[-1], bias)
    with torch.no_grad():                      # inference: the path the chapter times
        return layer(x)


def _condensed_cases() -> list[Case]:
    g = torch.Generator().manual_seed(44)

    def case(d_out, d_in, fan, with_bias=True):
        w = torch.randn(d_out, d_in, generator=g)
        mask = constant_fan_in_mask((d_out, d_in), fan / d_in, generator=g)
        bias = torch.randn(d_out, generator=g) if with_bias else torch.zeros(d_out)
        layer = CondensedLinear.from_masked(w, mask, bias)
        assert layer.fan_in == fan
        x = torch.randn(d_in, generator=g)
        return x, layer.values.detach().clone(), layer.indices.clone(), layer.bias.detach().clone()

    return [
        Case("a 37 x 101 layer with fan-in 13 (int32 indices, as CondensedLinear stores them)", case(37, 101, 13)),
        Case("a 16 x 16 layer with fan-in 4 and a zero bias", case(16, 16, 4, with_bias=False)),
        Case("a single output unit reading one of 9 inputs (fan-in 1)", case(1, 9, 1)),
        Case("a 5 x 7 layer with fan-in 7: every input kept (dense)", case(5, 7, 7)),
    ]


CONDENSED_ROW = Exercise(
    name="condensed_row", chapter="04_dst_fast",
    task="one row through a constant fan-in layer stored as (D_out, k) values and indices",
    reference=_condensed_reference, cases=_condensed_cases,
    # CondensedLinear's single-row path is a compiled loop (numba) that adds the k products in
    # its own order; float32 sums of ~10 unit-size terms differ by a few 1e-7 in absolute terms
    atol=1e-5)


def check_condensed_row(student_fn) -> str:
    """Check ``condensed_row(x, values, indices, bias)`` against :class:`sparsity_core.dst.CondensedLinear`.

    ``x`` is one input row ``(D_in,)``; ``values`` and ``indices`` ``(D_out, k)`` hold each
    output unit's ``k`` kept weights and their input positions (int32); ``bias`` ``(D_out,)``.
    The function returns ``(D_out,)``: :math:`y_o = b_o + \\sum_{j<k} V_{o,j}\\, x_{I_{o,j}}`.
    lasby2024dynamic (SRigL's condensed representation); taught in Chapter 4b, section 4b.4
    "Going fast: the condensed layer" (``04_dst_fast``).
    """
    return run_check(CONDENSED_ROW, student_fn)


#: The chapter's checked exercises.
EXERCISES: tuple[Exercise, ...] = (RIGL_UPDATE, PAIRED_INTERVAL, WIDE_LAYERS, CONDENSED_ROW)
