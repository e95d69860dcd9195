"""Checks of Chapter 5's exercises (see :mod:`sparsity_core.exercises`).

``05_moe`` ("Mixture-of-experts, part 1"):

* ``topk_route``: softmax-then-top-k routing, against :class:`sparsity_core.moe.TopKRouter`;
* ``switch_aux``: the Switch load-balancing loss, against :func:`sparsity_core.moe.switch_loss`;
* ``keep_within_capacity``: which top-1 slots fit an expert's capacity, against
  :func:`sparsity_core.moe.apply_capacity`;
* ``expert_choice_keep``: every expert picks its top-``c`` tokens, against
  :class:`sparsity_core.moe.ExpertChoiceRouter`.

``05_moe_lm`` ("Mixture-of-experts, part 2"):

* ``balanced_hash``: Roller et al.'s balanced token-to-expert table, against
  :func:`sparsity_core.moe.balanced_hash_table`.

``05_moe_upcycling`` ("Mixture-of-experts, part 3"):

* ``upcycle_weights``: the stacked expert weights of an upcycled layer, against the experts
  :func:`sparsity_core.moe.upcycle` builds.
"""
from __future__ import annotations

import torch
from torch import nn

from ..moe import (ExpertChoiceRouter, Routing, TopKRouter, apply_capacity, balanced_hash_table, switch_loss,
                   upcycle)
from .check import Case, Exercise, run_check

__all__ = ["EXERCISES", "check_topk_route", "check_switch_aux", "check_keep_within_capacity",
           "check_expert_choice_keep", "check_balanced_hash", "check_upcycle_weights"]


def _spare_generator() -> torch.Generator:
    """For the router's initial ``W_g``, which :func:`_router_on_logits` overwrites: a generator
    of its own, so that the check leaves the reader's global random state alone."""
    return torch.Generator().manual_seed(0)


def _router_on_logits(router, logits: torch.Tensor):
    """Run ``router`` (built with ``d_model = E``) on tokens equal to ``logits``, with the gate
    ``W_g = I``: the router's logits ``x W_g`` are then ``logits`` exactly (products with 0 and 1,
    sums of zeros)."""
    with torch.no_grad():
        router.w_gate.copy_(torch.eye(logits.shape[1], dtype=router.w_gate.dtype))
        routing = router(logits)
    assert torch.equal(routing.logits, logits)
    return routing


# --------------------------------------------------------------------------- topk_route
def _topk_reference(logits: torch.Tensor, k: int):
    router = TopKRouter(logits.shape[1], logits.shape[1], k, generator=_spare_generator())
    routing = _router_on_logits(router, logits)
    return routing.experts, routing.weights


def _logit_cases(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"50x6": 2 * torch.randn(50, 6, generator=g), "7x5": torch.randn(7, 5, generator=g),
            "1x4": torch.randn(1, 4, generator=g), "9x3": 3 * torch.randn(9, 3, generator=g),
            "13x8": torch.randn(13, 8, generator=g)}


def _topk_cases() -> list[Case]:
    lg = _logit_cases(50)
    return [
        Case("50 tokens, 6 experts, k = 2 (GShard's top-2)", (lg["50x6"], 2)),
        Case("7 tokens, 5 experts, k = 1 (Switch's top-1)", (lg["7x5"], 1)),
        Case("a single token, 4 experts, k = 3", (lg["1x4"], 3)),
        Case("9 tokens, 3 experts, k = 3 = E: every expert, in order of probability", (lg["9x3"], 3)),
    ]


TOPK_ROUTE = Exercise(
    name="topk_route", chapter="05_moe",
    task="softmax-then-top-k routing: experts and weights",
    reference=_topk_reference, cases=_topk_cases)


def check_topk_route(student_fn) -> str:
    """Check ``topk_route(logits, k)`` against :class:`sparsity_core.moe.TopKRouter`.

    ``logits`` ``(N, E)`` are the router's ``x W_g``; the function returns ``(experts, weights)``,
    both ``(N, k)``: the ``k`` experts of largest softmax probability of each token (int64,
    most probable first) and those probabilities (not renormalised). fedus2022switch Eqs. 1-2
    (``k = 1``), lepikhin2021gshard (top-2); taught in Chapter 5, sections 5.1-5.2.
    """
    return run_check(TOPK_ROUTE, student_fn)


# --------------------------------------------------------------------------- switch_aux
def _switch_reference(logits: torch.Tensor, experts: torch.Tensor):
    kept = torch.ones_like(experts, dtype=torch.bool)
    routing = Routing(experts=experts, weights=torch.zeros(experts.shape, dtype=logits.dtype), kept=kept,
                      dropped=torch.zeros_like(kept), num_experts=logits.shape[1], logits=logits)
    return switch_loss(routing)


def _switch_cases() -> list[Case]:
    lg = _logit_cases(51)
    g = torch.Generator().manual_seed(52)
    own2 = lg["50x6"].softmax(1).topk(2, dim=1).indices
    random1 = torch.randint(0, 8, (13, 1), generator=g)
    return [
        Case("50 tokens, 6 experts, each token's top-2 experts", (lg["50x6"], own2)),
        Case("13 tokens, 8 experts, one expert each drawn at random (some experts get none)",
             (lg["13x8"], random1)),
        Case("8 tokens spread evenly over 4 experts with uniform probabilities: the loss is 1",
             (torch.zeros(8, 4), torch.arange(8).remainder(4)[:, None])),
        Case("8 tokens all on expert 0 with probability about 1: the loss is about E = 4",
             (torch.tensor([[50.0, 0, 0, 0]] * 8), torch.zeros(8, 1, dtype=torch.long))),
        Case("a single token, 3 experts, k = 2", (lg["9x3"][:1], torch.tensor([[2, 0]]))),
    ]


SWITCH_AUX = Exercise(
    name="switch_aux", chapter="05_moe",
    task="the Switch load-balancing loss E * sum_i f_i P_i",
    reference=_switch_reference, cases=_switch_cases)


def check_switch_aux(student_fn) -> str:
    """Check ``switch_aux(logits, experts)`` against :func:`sparsity_core.moe.switch_loss`.

    ``logits`` ``(N, E)``, ``experts`` ``(N, k)`` int64 (the chosen experts); the function
    returns the scalar tensor :math:`E \\sum_i f_i P_i`, with :math:`f_i` the share of the
    ``N k`` slots on expert ``i`` and :math:`P_i` the mean softmax probability of expert ``i``
    (1 for uniform routing, E at collapse). fedus2022switch Eqs. 4-6 without alpha; taught in
    Chapter 5, section 5.2 "Switch".
    """
    return run_check(SWITCH_AUX, student_fn)


# --------------------------------------------------------------------------- keep_within_capacity
def _capacity_reference(experts: torch.Tensor, num_experts: int, capacity: int) -> torch.Tensor:
    kept, _ = apply_capacity(experts[:, None], torch.ones(experts.shape[0], 1, dtype=torch.bool),
                             num_experts, capacity)
    return kept[:, 0]


def _capacity_cases() -> list[Case]:
    g = torch.Generator().manual_seed(53)
    choice = torch.randint(0, 5, (97,), generator=g)
    busy = torch.tensor([0] * 10 + [1, 2, 3] * 4 + [0] * 3)
    return [
        Case("97 tokens on 5 experts, capacity 7", (choice, 5, 7)),
        Case("97 tokens on 5 experts, capacity 1: each expert keeps only its first token", (choice, 5, 1)),
        Case("97 tokens on 5 experts, capacity 97: nothing dropped", (choice, 5, 97)),
        Case("25 tokens, 13 of them on expert 0 (10 first, 3 last), 4 experts, capacity 6",
             (busy, 4, 6)),
        Case("a single token, 3 experts, capacity 1", (torch.tensor([2]), 3, 1)),
    ]


KEEP_WITHIN_CAPACITY = Exercise(
    name="keep_within_capacity", chapter="05_moe",
    task="top-1 slots that fit their expert's capacity, in token order",
    reference=_capacity_reference, cases=_capacity_cases)


def check_keep_within_capacity(student_fn) -> str:
    """Check ``keep_within_capacity(experts, num_experts, capacity)`` against
    :func:`sparsity_core.moe.apply_capacity`.

    ``experts`` ``(N,)`` int64 is each token's (top-1) expert, in token order; the function
    returns ``(N,)`` bool: True where the token is among the first ``capacity`` tokens of its
    expert (the rest overflow and are dropped). fedus2022switch Sec. 2.2 and Eq. 3; taught in
    Chapter 5, section 5.2 "Switch: one expert, a capacity, and dropped tokens".
    """
    return run_check(KEEP_WITHIN_CAPACITY, student_fn)


# --------------------------------------------------------------------------- expert_choice_keep
def _expert_choice_reference(scores: torch.Tensor, c: int) -> torch.Tensor:
    """``ExpertChoiceRouter`` on tokens ``log(scores)`` with ``W_g = I``: its softmax gives back
    ``scores`` (rows of probabilities, as the chapter's), up to rounding that leaves each
    column's order unchanged (checked). The capacity factor ``c E / N`` gives ``c`` tokens per
    expert (``expert_capacity`` rounds ``c E / N * N / E`` to 9 digits first)."""
    N, E = scores.shape
    router = ExpertChoiceRouter(E, E, capacity_factor=c * E / N, generator=_spare_generator())
    assert router.capacity(N) == c
    routing = _router_on_logits(router, scores.log())
    order = scores.t().argsort(dim=1, descending=True, stable=True)
    assert torch.equal(routing.probs().t().argsort(dim=1, descending=True, stable=True), order)
    return routing.kept


def _expert_choice_cases() -> list[Case]:
    lg = _logit_cases(54)
    g = torch.Generator().manual_seed(55)
    probs = {k: v.softmax(dim=1) for k, v in lg.items()}
    return [
        Case("50 tokens, 6 experts, c = 17 (capacity factor 2)", (probs["50x6"], 17)),
        Case("64 tokens, 8 experts, c = 16", ((torch.randn(64, 8, generator=g)).softmax(dim=1), 16)),
        Case("7 tokens, 5 experts, c = 1: each expert takes only its best token", (probs["7x5"], 1)),
        Case("9 tokens, 3 experts, c = 9 = N: every expert takes every token", (probs["9x3"], 9)),
    ]


EXPERT_CHOICE_KEEP = Exercise(
    name="expert_choice_keep", chapter="05_moe",
    task="expert choice: each expert keeps its c highest-scoring tokens",
    reference=_expert_choice_reference, cases=_expert_choice_cases)


def check_expert_choice_keep(student_fn) -> str:
    """Check ``expert_choice_keep(scores, c)`` against :class:`sparsity_core.moe.ExpertChoiceRouter`.

    ``scores`` ``(N, E)`` are the router's softmax probabilities; the function returns ``(N, E)``
    bool with exactly ``c`` True per column: the ``c`` tokens of highest score of each expert.
    zhou2022mixture Eq. 1; taught in Chapter 5, section 5.3 "Expert choice".
    """
    return run_check(EXPERT_CHOICE_KEEP, student_fn)


# --------------------------------------------------------------------------- balanced_hash
def _balanced_hash_cases() -> list[Case]:
    g = torch.Generator().manual_seed(56)
    return [
        Case("50 ids with counts 0-19 on 7 experts", (torch.randint(0, 20, (50,), generator=g).double(), 7)),
        Case("10 ids on 10 experts: one id each", (torch.randint(1, 9, (10,), generator=g).double(), 10)),
        Case("5 ids on 8 experts: three experts stay empty", (torch.tensor([4.0, 1.0, 4.0, 0.0, 2.0]), 8)),
        Case("200 ids with one id holding a third of the counts, 3 experts",
             (torch.cat([torch.tensor([400.0]), torch.randint(0, 9, (199,), generator=g).double()]), 3)),
        Case("12 ids, all with the same count, 5 experts (ties everywhere)", (torch.full((12,), 3.0), 5)),
    ]


BALANCED_HASH = Exercise(
    name="balanced_hash", chapter="05_moe_lm",
    task="the balanced hash: most frequent id first, each to the least-loaded expert",
    reference=balanced_hash_table, cases=_balanced_hash_cases)


def check_balanced_hash(student_fn) -> str:
    """Check ``balanced_hash(frequencies, num_experts)`` against
    :func:`sparsity_core.moe.balanced_hash_table`.

    ``frequencies`` ``(V,)`` are non-negative counts per token id; the function returns the
    ``(V,)`` int64 table id -> expert of the greedy assignment (ids by decreasing frequency, ties
    to the lower id; each to the expert of least total frequency, ties to the one holding fewer
    ids, then the lower index). roller2021hash (balanced hash); taught in Chapter 5, part 2,
    "The balanced hash, and why characters cannot be balanced".
    """
    return run_check(BALANCED_HASH, student_fn)


# --------------------------------------------------------------------------- upcycle_weights
class _DenseFFN(nn.Module):
    """A bias-free GELU FFN with given weights, shaped as TinyGPT's ``FeedForward``."""

    def __init__(self, fc_weight: torch.Tensor, proj_weight: torch.Tensor):
        super().__init__()
        self.c_fc = nn.Linear(fc_weight.shape[1], fc_weight.shape[0], bias=False)
        self.c_proj = nn.Linear(proj_weight.shape[1], proj_weight.shape[0], bias=False)
        self.gelu = nn.GELU()
        with torch.no_grad():
            self.c_fc.weight.copy_(fc_weight)
            self.c_proj.weight.copy_(proj_weight)


def _upcycle_reference(fc_weight: torch.Tensor, proj_weight: torch.Tensor, num_experts: int):
    router = TopKRouter(fc_weight.shape[1], num_experts, 1, renormalize=True, generator=_spare_generator())
    experts = upcycle(_DenseFFN(fc_weight, proj_weight), router).experts
    return experts.w1.detach(), experts.w2.detach()


def _upcycle_cases() -> list[Case]:
    g = torch.Generator().manual_seed(57)

    def ffn(C: int, H: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(H, C, generator=g), torch.randn(C, H, generator=g)
    return [
        Case("C = 4, H = 16, 3 experts", (*ffn(4, 16), 3)),
        Case("C = 8, H = 8, 1 expert: the dense layer itself", (*ffn(8, 8), 1)),
        Case("C = 6, H = 24, 8 experts", (*ffn(6, 24), 8)),
        Case("C = 5, H = 7, 2 experts (H not a multiple of C)", (*ffn(5, 7), 2)),
    ]


UPCYCLE_WEIGHTS = Exercise(
    name="upcycle_weights", chapter="05_moe_upcycling",
    task="the stacked expert weights of an upcycled FFN: every expert a copy of the dense one",
    reference=_upcycle_reference, cases=_upcycle_cases)


def check_upcycle_weights(student_fn) -> str:
    """Check ``upcycle_weights(fc_weight, proj_weight, num_experts)`` against the experts of
    :func:`sparsity_core.moe.upcycle`.

    ``fc_weight`` ``(H, C)`` and ``proj_weight`` ``(C, H)`` are a bias-free dense FFN's
    ``nn.Linear`` weights; the function returns ``w1`` ``(E, C, H)`` and ``w2`` ``(E, H, C)``,
    every expert a copy of the dense layer. komatsuzaki2023sparse (sparse upcycling); taught in
    Chapter 5, part 3, "The surgery".
    """
    return run_check(UPCYCLE_WEIGHTS, student_fn)


#: The chapter's checked exercises.
EXERCISES: tuple[Exercise, ...] = (TOPK_ROUTE, SWITCH_AUX, KEEP_WITHIN_CAPACITY, EXPERT_CHOICE_KEEP, BALANCED_HASH,
                                   UPCYCLE_WEIGHTS)
