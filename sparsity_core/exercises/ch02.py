"""Checks of Chapter 2's exercises (``book/02_pruning.ipynb`` and its parts
``book/02_pruning_lottery.ipynb`` and ``book/02_pruning_random.ipynb``; see
:mod:`sparsity_core.exercises`).

Checked:

* ``erk_by_hand(shapes, sparsity)``: Erdos-Renyi densities of Linear layers with RigL's cap,
  against :func:`sparsity_core.allocation.erdos_renyi_densities`;
* ``rounds_for(sparsity, rate)``: the fewest IMP rounds reaching a sparsity, against
  :func:`sparsity_core.pruning.imp_rounds`;
* ``small_dense_width_loop(budget)``: the widest 40-H-H-10 MLP within a weight budget, against
  the weights the package counts in :class:`sparsity_core.models.MLP`
  (:func:`sparsity_core.allocation.layer_shapes`), the largest fitting H found by bisection.

Not checked: ``imp_rewind_to_init`` (its solution trains on the chapter's data with the
part's constants, ``mnist``, ``LENET``, ``IMP_RATE``, ``T2``, so it cannot run on its own),
and the ``NormWeightedPruner`` class exercise (a class, not a function).
"""
from __future__ import annotations

import math

import torch

from ..allocation import erdos_renyi_densities, layer_shapes
from ..models import MLP
from ..pruning import imp_rounds
from .check import Case, Exercise, run_check

__all__ = ["EXERCISES", "check_erk_by_hand", "check_rounds_for", "check_small_dense_width_loop"]

CHAPTER = "02_pruning"                  # small_dense_width_loop (PR-1, part 1)
CHAPTER_LOTTERY = "02_pruning_lottery"  # rounds_for (IMP, part 2)
CHAPTER_RANDOM = "02_pruning_random"    # erk_by_hand (ERK densities, part 3)


# --------------------------------------------------------------------------- rounds_for
def _rounds_cases():
    return [
        Case("95 % sparsity with rounds of 20 % (the chapter's setting)", (0.95, 0.2)),
        Case("80 % sparsity with rounds of 20 %", (0.8, 0.2)),
        Case("36 % sparsity with rounds of 20 %: exactly 2 rounds, 0.8^2 = 0.64 up to float rounding",
             (0.36, 0.2)),
        Case("75 % sparsity with rounds of 50 %: exactly 2 rounds", (0.75, 0.5)),
        Case("99.9 % sparsity with rounds of 10 %", (0.999, 0.1)),
    ]


ROUNDS_FOR = Exercise(
    name="rounds_for", chapter=CHAPTER_LOTTERY,
    task="the fewest IMP rounds of a given rate that reach a sparsity",
    reference=imp_rounds, cases=_rounds_cases)


def check_rounds_for(student_fn):
    """Check ``rounds_for(sparsity, rate)``: the fewest rounds ``r`` (an int) such that pruning
    ``rate`` of the remaining weights in each round leaves at most ``1 - sparsity``:
    ``(1 - rate)^r <= 1 - sparsity``, robust to the float rounding of exact cases
    (0.8^2 vs 0.64).

    Compared with :func:`sparsity_core.pruning.imp_rounds` (iterative magnitude pruning,
    frankle2019lottery). Taught in Chapter 2, "Pruning I" (IMP and lottery tickets).
    """
    return run_check(ROUNDS_FOR, student_fn)


# --------------------------------------------------------------------------- small_dense_width_loop
def _mlp_weights(H: int) -> int:
    """Weights (biases excluded) of the package's 40-H-H-10 MLP, as layer_shapes lists them."""
    if H == 0:
        return 0
    with torch.random.fork_rng(devices=[]):   # building the MLP draws its init: keep the caller's RNG
        model = MLP([40, H, H, 10])
    return sum(math.prod(shape) for shape in layer_shapes(model).values())


def _width_reference(budget):
    """The largest H whose 40-H-H-10 MLP has at most ``budget`` weights (bisection)."""
    lo, hi = 0, 1                                 # invariant: weights(lo) <= budget < weights(hi)
    while _mlp_weights(hi) <= budget:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _mlp_weights(mid) <= budget else (lo, mid)
    return lo


def _width_cases():
    return [
        Case("10 % of the weights of 40-512-512-10 (budget 28 467.2, the chapter's case)",
             (0.1 * (40 * 512 + 512 * 512 + 512 * 10),)),
        Case("a budget of exactly 600 weights, the size of 40-10-10-10 (the bound is inclusive)", (600,)),
        Case("a budget of 599 weights, one short of 40-10-10-10", (599,)),
        Case("a budget of 50 weights, below the 51 of the narrowest MLP (H = 0)", (50,)),
        Case("a budget of 1 000 000 weights", (1_000_000,)),
    ]


SMALL_DENSE_WIDTH_LOOP = Exercise(
    name="small_dense_width_loop", chapter=CHAPTER,
    task="the widest 40-H-H-10 MLP within a weight budget",
    reference=_width_reference, cases=_width_cases)


def check_small_dense_width_loop(student_fn):
    """Check ``small_dense_width_loop(budget)``: the largest int ``H >= 0`` such that a
    40-H-H-10 MLP has at most ``budget`` weights, biases excluded
    (``40 H + H^2 + 10 H <= budget``; 0 if even H = 1 does not fit).

    Compared with the weights that :func:`sparsity_core.allocation.layer_shapes` lists for
    :class:`sparsity_core.models.MLP` ``([40, H, H, 10])``. Taught in Chapter 2, "Pruning I"
    (the small-dense comparator of large-sparse vs small-dense, zhu2017prune).
    """
    return run_check(SMALL_DENSE_WIDTH_LOOP, student_fn)


# --------------------------------------------------------------------------- erk_by_hand
def _mlp_shapes(sizes):
    """``{'fc1.weight': (D_1, D_0), ...}`` of an MLP with layer sizes ``sizes`` (PyTorch layout)."""
    return {f"fc{i + 1}.weight": (d_out, d_in) for i, (d_in, d_out) in enumerate(zip(sizes, sizes[1:]))}


def _erk_cases():
    return [
        Case("MLP 64-512-512-10 at 90 % sparsity (the part's widest network; its 10-output layer capped dense)",
             (_mlp_shapes([64, 512, 512, 10]), 0.9)),
        Case("MLP 40-256-256-10 at 80 % sparsity: the 10-output layer is capped dense and epsilon re-solved",
             (_mlp_shapes([40, 256, 256, 10]), 0.8)),
        Case("LeNet-300-100 (784-300-100-10) at 98 % sparsity", (_mlp_shapes([784, 300, 100, 10]), 0.98)),
        Case("one square 32 x 32 layer at 75 % sparsity: the budget itself, 0.25",
             ({"fc1.weight": (32, 32)}, 0.75)),
        Case("MLP 8-8-2 at 10 % sparsity: the output layer is capped and the first layer takes the rest, 0.875",
             (_mlp_shapes([8, 8, 2]), 0.1)),
    ]


ERK_BY_HAND = Exercise(
    name="erk_by_hand", chapter=CHAPTER_RANDOM,
    task="Erdos-Renyi layer densities for a sparsity budget, layers above 1 capped dense",
    reference=lambda shapes, sparsity: erdos_renyi_densities(shapes, sparsity=sparsity), cases=_erk_cases,
    rtol=1e-9, atol=1e-12)


def check_erk_by_hand(student_fn):
    """Check ``erk_by_hand(shapes, sparsity)``: name -> density of each Linear weight (shape
    ``(n_out, n_in)``), :math:`d_l = \\varepsilon\\,(n_\\mathrm{in} + n_\\mathrm{out})/(n_\\mathrm{in}\\,
    n_\\mathrm{out})`, with :math:`\\varepsilon` solved so that the kept weights are
    ``(1 - sparsity)`` of all weights; any layer whose density would exceed 1 is made dense
    (density 1.0) and :math:`\\varepsilon` re-solved over the others, until none does.

    Compared with :func:`sparsity_core.allocation.erdos_renyi_densities` (mocanu2018scalable;
    evci2020rigging, Sec. 3, and google-research/rigl's ``get_sparsities_erdos_renyi``).
    Taught in Chapter 2, "Pruning I", part 3 (random masks and ERK densities).
    """
    return run_check(ERK_BY_HAND, student_fn)


#: The chapter's checked exercises.
EXERCISES: tuple[Exercise, ...] = (ROUNDS_FOR, SMALL_DENSE_WIDTH_LOOP, ERK_BY_HAND)
