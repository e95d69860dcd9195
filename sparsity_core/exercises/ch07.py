"""Checks of Chapter 7's exercises (see :mod:`sparsity_core.exercises`).

* ``07_sae``, Exercise 1: ``topk_by_hand`` against :func:`sparsity_core.sae.topk_relu`.
* ``07_sae``, Exercise 2: ``represented`` against :func:`sparsity_core.sae.features_represented`.
* ``07_sae``, Exercise 3: ``mmcs_by_hand`` against :func:`sparsity_core.sae.mmcs`.
* ``07_sae_lm``, Exercise 1: ``rescaled_fvu`` against :func:`sparsity_core.sae.fvu` at the scale
  ``1 / shrinkage`` (:func:`sparsity_core.sae.shrinkage`).
* ``07_sae_lm``, Exercise 2: ``frontier_by_hand`` against :func:`sparsity_core.sae.frontier_at`.
* ``07_sae_lm``, Exercise 3: ``firing_rates`` against :func:`sparsity_core.sae.latent_frequencies`.
* ``07_sae_scaling``, Exercise 2: ``parent_latents`` against :func:`sparsity_core.sae.cosine_matrix`.
* ``07_sae_scaling``, Exercise 3: ``absorption_by_hand`` against
  :func:`sparsity_core.sae.absorption_rate` on the true and on a hand-built absorbing dictionary.

Not checked: ``07_sae_scaling``'s ``power_law`` (the package has no power-law fit; the chapter
compares with ``np.polyfit``).
"""
from __future__ import annotations

import torch

from .. import sae as S
from .check import Case, Exercise, run_check

__all__ = ["EXERCISES", "check_topk_by_hand", "check_rescaled_fvu", "check_represented", "check_mmcs_by_hand",
           "check_frontier_by_hand", "check_firing_rates", "check_parent_latents", "check_absorption_by_hand"]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- 07_sae, Exercise 1: TopK by hand

def _topk_reference(pre, k):
    return S.topk_relu(pre, k)


def _topk_cases() -> list[Case]:
    few_positive = torch.randn(4, 9, generator=_gen(3))
    few_positive[1] = -few_positive[1].abs() - 0.1            # a row with no positive entry
    few_positive[2, :] = -few_positive[2].abs() - 0.1
    few_positive[2, [1, 6]] = torch.tensor([0.7, 0.2])          # a row with only two positive entries
    return [
        Case("6 x 12 pre-activations, k = 4", (torch.randn(6, 12, generator=_gen(1)), 4)),
        Case("a single row of 7, k = 7 (every entry kept: only the ReLU acts)",
             (torch.randn(1, 7, generator=_gen(2)), 7)),
        Case("4 x 9 pre-activations, k = 3, one row all negative and one with only two positive entries "
             "(TopK first, then ReLU: those rows end with fewer than k non-zeros)", (few_positive, 3)),
        Case("5 x 11 float64 pre-activations, k = 1", (torch.randn(5, 11, generator=_gen(4), dtype=torch.float64), 1)),
    ]


TOPK_BY_HAND = Exercise(
    name="topk_by_hand", chapter="07_sae", task="ReLU(TopK_k) of each row of the pre-activations",
    reference=_topk_reference, cases=_topk_cases)


def check_topk_by_hand(student_fn) -> str:
    """Check ``topk_by_hand(pre, k)``: for pre-activations ``pre (B, n)``, keep the ``k`` largest
    entries of each row, zero the rest, then apply the ReLU (in that order, as the code of Gao et
    al., gao2024scaling, Sec. 2.3), returning a ``(B, n)`` tensor of ``pre``'s dtype. Compared with
    :func:`sparsity_core.sae.topk_relu`; taught in Chapter 7
    (``07_sae``, section 2, the TopK SAE; Exercise 1)."""
    return run_check(TOPK_BY_HAND, student_fn)


# ---------------------------------------------- 07_sae_lm, Exercise 1: FVU after undoing shrinkage

def _rescaled_fvu_reference(x, x_hat):
    c = 1.0 / S.shrinkage(x, x_hat)               # the least-squares scale is 1 / gamma
    return S.fvu(x, c * x_hat), c


def _centred(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(0)


def _rescaled_fvu_cases() -> list[Case]:
    x = _centred(torch.randn(40, 6, generator=_gen(10)))
    shrunk = 0.6 * x + 0.1 * torch.randn(40, 6, generator=_gen(11))
    x2 = _centred(torch.randn(25, 9, generator=_gen(12)))
    over = 1.7 * x2 + 0.5 * torch.randn(25, 9, generator=_gen(13))
    x3 = _centred(torch.randn(3, 2, generator=_gen(14)))
    return [
        Case("40 x 6 centred activations, a reconstruction shrunk to about 0.6 x plus noise", (x, shrunk)),
        Case("25 x 9 centred activations, a reconstruction 1.7 times too large plus noise (c < 1)", (x2, over)),
        Case("3 x 2 centred activations reconstructed as exactly half of x (c = 2, FVU after = 0)", (x3, 0.5 * x3)),
    ]


RESCALED_FVU = Exercise(
    name="rescaled_fvu", chapter="07_sae_lm", task="FVU after the least-squares rescale c, and c",
    reference=_rescaled_fvu_reference, cases=_rescaled_fvu_cases)


def check_rescaled_fvu(student_fn) -> str:
    """Check ``rescaled_fvu(x, x_hat)``: for centred activations ``x (B, d)`` and a reconstruction
    ``x_hat (B, d)``, the least-squares scalar ``c`` (minimising ``sum ||x - c x_hat||^2``, which
    is ``1 / shrinkage``) and the FVU of ``c * x_hat``, returned as ``(fvu, c)`` (two floats).
    Compared with :func:`sparsity_core.sae.fvu` and :func:`sparsity_core.sae.shrinkage`; taught in
    Chapter 7 (``07_sae_lm``, section 1, shrinkage of the ReLU/L1 SAE; Exercise 1)."""
    return run_check(RESCALED_FVU, student_fn)


# ------------------------------------------------------ 07_sae, Exercise 2: represented features

def _represented_reference(W):
    return int(S.features_represented(W)[0])


def _represented_cases() -> list[Case]:
    # Column norms are kept well away from the 0.5 threshold (at least 0.01 from it), so
    # float32 rounding cannot decide a column.
    W = torch.randn(5, 10, generator=_gen(20)) * 0.25
    W_gap = W.clone()
    W_gap[:, [2, 7]] = 0.0                                      # two features not learned at all
    W_gap[:, 4] = torch.tensor([0.3, 0.0, 0.0, 0.0, 0.38])       # norm 0.484: just below
    W_gap[:, 5] = torch.tensor([0.0, 0.37, 0.0, 0.37, 0.0])      # norm 0.523: just above
    return [
        Case("a 5 x 10 weight with column norms spread around 0.5", (W,)),
        Case("a 5 x 10 weight with two zero columns and two columns of norm 0.484 and 0.523", (W_gap,)),
        Case("a 1 x 8 weight (one hidden dimension: the norm is the absolute value)",
             (torch.tensor([[0.7, -0.9, 0.2, -0.3, 0.0, 0.55, -0.45, 1.2]]),)),
        Case("a 3 x 1 weight (a single feature, norm 0.6)", (torch.tensor([[0.0], [0.36], [0.48]]),)),
    ]


REPRESENTED = Exercise(
    name="represented", chapter="07_sae", task="features whose column of W has norm > 0.5",
    reference=_represented_reference, cases=_represented_cases)


def check_represented(student_fn) -> str:
    """Check ``represented(W)``: for a toy model's weight ``W (m, n)`` (hidden dimension ``m``,
    ``n`` features), the number (an int) of columns whose Euclidean norm exceeds 0.5, the features
    the model represents (elhage2022toy). Compared with
    :func:`sparsity_core.sae.features_represented`; taught in Chapter 7 (``07_sae``, section 1, the
    toy model of superposition; Exercise 2)."""
    return run_check(REPRESENTED, student_fn)


# ------------------------------------------------------------- 07_sae, Exercise 3: MMCS by hand

def _mmcs_reference(features, W_dec):
    return S.mmcs(features, W_dec)


def _mmcs_cases() -> list[Case]:
    features = torch.randn(6, 5, generator=_gen(50))
    exact = features.T * torch.tensor([2.0, 0.5, 1.0, 3.0, 1.0, 0.7])    # the truth, columns rescaled
    flipped = features.T.clone()
    flipped[:, [1, 4]] *= -1                                          # two atoms with the wrong sign
    return [
        Case("6 true features in R^5 and a random 5 x 9 decoder", (features, torch.randn(5, 9, generator=_gen(51)))),
        Case("the true dictionary with its columns rescaled (norms do not matter: MMCS = 1)", (features, exact)),
        Case("the true dictionary with two columns' signs flipped (a cosine of -1 is no match)", (features, flipped)),
        Case("a single decoder column (every feature's best match is that column, cosines may be negative)",
             (features, torch.randn(5, 1, generator=_gen(52)))),
    ]


MMCS_BY_HAND = Exercise(
    name="mmcs_by_hand", chapter="07_sae", task="mean over true features of the best cosine with a decoder column",
    reference=_mmcs_reference, cases=_mmcs_cases)


def check_mmcs_by_hand(student_fn) -> str:
    """Check ``mmcs_by_hand(features, W_dec)``: for true features ``features (m, d)`` and a decoder
    ``W_dec (d, n)`` (one column per latent), the mean over the ``m`` features of the largest
    cosine with any column (a float; sharkey2022taking). Compared with
    :func:`sparsity_core.sae.mmcs`; taught in Chapter 7 (``07_sae``, section 2, SAEs on data with
    known features; Exercise 3)."""
    return run_check(MMCS_BY_HAND, student_fn)


# ------------------------------------------------ 07_sae_lm, Exercise 2: reading a frontier

def _frontier_reference(l0s, fvus, at):
    return S.frontier_at(l0s, fvus, at)


def _frontier_cases() -> list[Case]:
    l0s, fvus = [30.0, 8.0, 14.0, 60.0], [0.05, 0.2, 0.11, 0.03]       # any order, as a sweep's table
    return [
        Case("four runs given out of order, read between two of them (L0 = 10)", (l0s, fvus, 10.0)),
        Case("read exactly at a run's own L0 (14): that run's FVU", (l0s, fvus, 14.0)),
        Case("read at the geometric mean of two runs (L0 = sqrt(8 x 14)): the mean of their FVUs",
             (l0s, fvus, (8.0 * 14.0) ** 0.5)),
        Case("below the sweep's range (L0 = 5): NaN", (l0s, fvus, 5.0)),
        Case("above the sweep's range (L0 = 64): NaN", (l0s, fvus, 64.0)),
        Case("a sweep of one run, read at its L0", ([16.0], [0.07], 16.0)),
    ]


FRONTIER_BY_HAND = Exercise(
    name="frontier_by_hand", chapter="07_sae_lm", task="a sweep's FVU at a given L0, linear in log L0",
    reference=_frontier_reference, cases=_frontier_cases)


def check_frontier_by_hand(student_fn) -> str:
    """Check ``frontier_by_hand(l0s, fvus, at)``: for a sweep's runs (their L0s, any order, and
    FVUs), the FVU at ``L0 = at`` interpolated linearly in ``log L0`` between the two runs that
    bracket it, NaN outside the sweep's range (a float). Compared with
    :func:`sparsity_core.sae.frontier_at`; taught in Chapter 7 (``07_sae_lm``, section 1, every
    comparison at matched L0; Exercise 2)."""
    return run_check(FRONTIER_BY_HAND, student_fn)


# ----------------------------------------------- 07_sae_lm, Exercise 3: how often latents fire

def _firing_rates_reference(f):
    return S.latent_frequencies(f)


def _firing_rates_cases() -> list[Case]:
    f = torch.randn(20, 7, generator=_gen(60)).relu()
    f[:, 3] = 0.0                                                    # a latent that never fires
    neg = torch.zeros(4, 3)
    neg[0, 0], neg[1, 0], neg[2, 2] = 1.5, -0.5, 2.0                # a negative entry fires too (non-zero)
    return [
        Case("a 20 x 7 ReLU code with one latent that never fires", (f,)),
        Case("a 4 x 3 code with a negative entry (non-zero counts, whatever its sign)", (neg,)),
        Case("a single row", (torch.tensor([[0.0, 0.3, 0.0, 1.0]]),)),
    ]


FIRING_RATES = Exercise(
    name="firing_rates", chapter="07_sae_lm", task="share of rows on which each latent is non-zero",
    reference=_firing_rates_reference, cases=_firing_rates_cases)


def check_firing_rates(student_fn) -> str:
    """Check ``firing_rates(f)``: for a code ``f (B, n)``, the ``(n,)`` share of its ``B`` rows on
    which each latent is non-zero (float64). Compared with
    :func:`sparsity_core.sae.latent_frequencies`; taught in Chapter 7 (``07_sae_lm``, section 2,
    what the latents respond to; Exercise 3)."""
    return run_check(FIRING_RATES, student_fn)


# ------------------------------------------- 07_sae_scaling, Exercise 2: the parents' latents

def _parent_latents_reference(W_dec, parents):
    best = S.cosine_matrix(parents, W_dec.T).max(dim=1)
    return best.indices, best.values


def _parent_latents_cases() -> list[Case]:
    parents = torch.randn(2, 6, generator=_gen(31))
    W_dec = torch.randn(6, 15, generator=_gen(32))
    W_dec[:, 9] = 2.5 * parents[0]                               # parent 0 has its own latent
    W_dec[:, 3] = 0.4 * parents[1] + 0.1 * W_dec[:, 3]           # parent 1's latent is close, not exact
    return [
        Case("a 8 x 20 decoder and 3 random parent directions",
             (torch.randn(8, 20, generator=_gen(30)), torch.randn(3, 8, generator=_gen(33)))),
        Case("a 6 x 15 decoder holding a scaled copy of parent 0 (column 9, cosine 1) and a near "
             "copy of parent 1 (column 3)", (W_dec, parents)),
        Case("a 5 x 1 decoder (one latent: every parent's answer is latent 0, cosines may be negative)",
             (torch.randn(5, 1, generator=_gen(34)), torch.randn(4, 5, generator=_gen(35)))),
        Case("a 16 x 40 decoder and a single parent", (torch.randn(16, 40, generator=_gen(36)),
                                                       torch.randn(1, 16, generator=_gen(37)))),
    ]


PARENT_LATENTS = Exercise(
    name="parent_latents", chapter="07_sae_scaling",
    task="each parent's latent of largest decoder cosine, and that cosine",
    reference=_parent_latents_reference, cases=_parent_latents_cases)


def check_parent_latents(student_fn) -> str:
    """Check ``parent_latents(W_dec, parents)``: for a decoder ``W_dec (d, n)`` (one column per
    latent) and parent directions ``parents (P, d)``, each parent's latent whose decoder column
    has the largest cosine with it and that cosine, returned as ``(indices (P,) int64, cosines
    (P,))``. Compared with :func:`sparsity_core.sae.cosine_matrix`; taught in Chapter 7
    (``07_sae_scaling``, section 3, absorption on a known hierarchy, chanin2024absorption; Exercise 2)."""
    return run_check(PARENT_LATENTS, student_fn)


# ---------------------------------------- 07_sae_scaling, Exercise 3: absorption by hand

def _absorption_by_hand_reference(h):
    P, C = len(h.parents), len(h.children)
    true_codes = torch.cat([h.parent_active, h.child_active, h.independent_active], 1).float()
    args = (h.parents, h.parent_active, h.child_active, h.child_parent)
    W = h.features.T.clone()                                          # (d, P + C + I)
    true_rates = S.absorption_rate(true_codes, W, *args)
    merged = h.children + h.parents[h.child_parent]                  # (C, d)
    W[:, P:P + C] = (merged / merged.norm(dim=1, keepdim=True)).T
    with_child = torch.zeros(h.parent_active.shape)
    with_child.index_add_(1, h.child_parent, h.child_active.float())
    absorbed_codes = true_codes.clone()
    absorbed_codes[:, :P] *= (with_child == 0).float()
    return true_rates, S.absorption_rate(absorbed_codes, W, *args)


def _absorption_by_hand_cases() -> list[Case]:
    return [
        Case("section 3's setting, 3,000 rows (d = 64, 8 parents x 8 children, 64 independent)",
             (S.hierarchy_data(3000, 64, p_parent=0.15, p_independent=0.08, generator=_gen(40)),)),
        Case("2 parents with 3 children each in d = 12, parents alone half the time",
             (S.hierarchy_data(400, 12, n_parents=2, children_per_parent=3, n_independent=4, p_parent=0.3,
                               p_alone=0.5, generator=_gen(41)),)),
        Case("a rare parent: 30 rows, so some parents never appear with a child (their rates are NaN)",
             (S.hierarchy_data(30, 16, n_parents=4, children_per_parent=2, n_independent=3, p_parent=0.1,
                               generator=_gen(42)),)),
    ]


ABSORPTION_BY_HAND = Exercise(
    name="absorption_by_hand", chapter="07_sae_scaling",
    task="absorption rates per parent of the true dictionary (all 0) and of a hand-built absorbing one (all 1)",
    reference=_absorption_by_hand_reference, cases=_absorption_by_hand_cases)


def check_absorption_by_hand(student_fn) -> str:
    """Check ``absorption_by_hand(h)``: for :class:`sparsity_core.sae.HierarchyData` ``h``, the
    per-parent rates of :func:`sparsity_core.sae.absorption_rate` (1) with the true dictionary
    ``h.features.T`` and the true codes (which features are active), and (2) with the dictionary
    an absorbing SAE learns: each child's column the normalised sum of child and parent, and a
    parent's code off wherever one of its children is active; returned as two ``(P,)`` float64
    tensors (NaN for a parent never seen with a child). Taught in Chapter 7 (``07_sae_scaling``,
    section 3, chanin2024absorption; Exercise 3)."""
    return run_check(ABSORPTION_BY_HAND, student_fn)


#: The chapter's checked exercises.
EXERCISES: tuple[Exercise, ...] = (TOPK_BY_HAND, REPRESENTED, MMCS_BY_HAND, RESCALED_FVU, FRONTIER_BY_HAND, FIRING_RATES,
                                   PARENT_LATENTS, ABSORPTION_BY_HAND)
