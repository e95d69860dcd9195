"""Learned routers: noisy top-k gating, softmax top-k / Switch with capacity, expert choice.

Each router is a thin module holding its gate matrix ``W_g`` ``(C, E)`` (stored as a plain
parameter, so TinyGPT's ``nn.Linear`` initialisation leaves it alone) and a ``forward`` that
returns a :class:`~sparsity_core.moe.routing.Routing` and stores nothing. They share one
signature, ``router(x, *, token_ids=None, generator=None)`` with ``x`` ``(N, C)``, so the
MoE layer can hold any of them (token ids are read only by
:class:`~sparsity_core.moe.hashing.HashRouter`).

* :class:`NoisyTopKRouter`, shazeer2017outrageously Eqs. 3-5:
  :math:`G(x) = \\mathrm{Softmax}(\\mathrm{KeepTopK}(H(x), k))`,
  :math:`H(x)_i = (x W_g)_i + \\epsilon_i \\cdot \\mathrm{Softplus}((x W_{noise})_i)`,
  :math:`\\epsilon \\sim N(0, 1)`, with ``W_g = W_noise = 0`` at initialisation.
* :class:`TopKRouter` / :class:`SwitchRouter`: :math:`p(x) = \\mathrm{Softmax}(x W_g)`, the
  top-k experts weighted by their probability (fedus2022switch Eqs. 1-2, ``k = 1``; GShard's
  top-2, lepikhin2021gshard), slots over an expert's capacity dropped
  (:func:`~sparsity_core.moe.routing.apply_capacity`).
* :class:`ExpertChoiceRouter`, zhou2022mixture Eq. 1: :math:`S = \\mathrm{Softmax}(X W_g)`,
  :math:`G, I = \\mathrm{TopK}(S^\\top, c)`: each expert takes its ``c`` highest-scoring tokens.

Deviations from the reference code (tensorflow/tensor2tensor ``utils/expert_utils.py``
``noisy_top_k_gating``; Mesh-TF / Hugging Face Switch routers; read, not copied): the noise
scale gets t2t's floor :data:`MIN_NOISE_STD` (the paper has no floor); t2t takes the top
``k + 1`` logits to find the threshold for the load estimate, which here lives in
:func:`sparsity_core.moe.losses.load_probabilities`; Switch's multiplicative input jitter is
not applied.

Taught in: Chapter 5, "Mixture-of-experts".
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from .routing import Routing, apply_capacity, expert_capacity

__all__ = ["MIN_NOISE_STD", "SWITCH_INIT_SCALE", "SWITCH_CAPACITY_FACTOR", "EXPERT_CHOICE_CAPACITY_FACTOR",
           "NoisyTopKRouter", "TopKRouter", "SwitchRouter", "ExpertChoiceRouter", "check_tokens"]

#: Floor added to the noise scale ``Softplus(x W_noise)`` (tensor2tensor's ``noise_epsilon``).
MIN_NOISE_STD = 1e-2
#: Router init: truncated normal with std ``sqrt(s / C)``, s = 0.1 (fedus2022switch Sec. 2.4,
#: "reduced from the default Transformer initialization scale s = 1.0").
SWITCH_INIT_SCALE = 0.1
#: Switch's capacity factor (fedus2022switch Table 1 runs 1.0, 1.25 and 2.0).
SWITCH_CAPACITY_FACTOR = 1.0
#: Expert choice's capacity factor c, expert slots per token on average (zhou2022mixture: c = 2).
EXPERT_CHOICE_CAPACITY_FACTOR = 2.0


def check_tokens(x: object, d_model: int | None) -> torch.Tensor:
    """``x`` if it is a floating ``(N, C)`` tensor with N >= 1 and ``C = d_model`` (any C
    when ``d_model`` is None), else raise ``TypeError`` / ``ValueError``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor (got {type(x).__name__})")
    if x.dim() != 2 or x.shape[0] < 1 or (d_model is not None and x.shape[1] != d_model):
        raise ValueError(f"x must have shape (N, {'C' if d_model is None else d_model}) with N >= 1 "
                         f"(got {tuple(x.shape)})")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor (got {x.dtype})")
    return x


class _GateRouter(nn.Module):
    """The shared shell: ``W_g`` ``(C, E)`` and the input check."""

    def __init__(self, d_model: int, num_experts: int):
        super().__init__()
        self.d_model = checks.positive_int(d_model, "d_model")
        self.num_experts = checks.positive_int(num_experts, "num_experts")
        self.w_gate = nn.Parameter(torch.zeros(self.d_model, self.num_experts))

    @torch.no_grad()
    def _switch_init(self, generator: torch.Generator | None) -> None:
        std = math.sqrt(SWITCH_INIT_SCALE / self.d_model)
        nn.init.trunc_normal_(self.w_gate, 0.0, std, -2 * std, 2 * std, generator=checks.generator(generator))

    def capacity(self, num_tokens: int) -> int | None:
        """Slots per expert for ``num_tokens`` tokens, or None when there is no capacity."""
        return None


class NoisyTopKRouter(_GateRouter):
    """Noisy top-k gating (shazeer2017outrageously Eqs. 3-5).

    Noise is drawn in training mode only (``self.training``), from ``generator`` if given;
    in eval mode ``H(x) = x W_g``. The noise scale is reported either way, so the smooth load
    estimate of :func:`~sparsity_core.moe.losses.load_loss` is defined in both modes.

    Args:
        d_model: C.
        num_experts: E.
        k: experts per token, ``1 <= k <= E``.
        noisy: False drops ``W_noise`` (plain top-k softmax gating; no load estimate).

    Shapes: ``x (N, C) -> Routing`` with ``K = k``; weights are the softmax over the ``k``
    kept logits, so each token's weights sum to 1.
    """

    def __init__(self, d_model: int, num_experts: int, k: int, *, noisy: bool = True):
        super().__init__(d_model, num_experts)
        self.k = checks.integer(k, "k", lo=1, hi=self.num_experts)
        if not isinstance(noisy, bool):
            raise TypeError(f"noisy must be a bool (got {noisy!r})")
        # "we initialize the matrices W_g and W_noise to all zeros" (shazeer2017outrageously App. A)
        self.w_noise = nn.Parameter(torch.zeros(self.d_model, self.num_experts)) if noisy else None

    def forward(self, x: torch.Tensor, *, token_ids: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> Routing:
        x = check_tokens(x, self.d_model)
        clean = x @ self.w_gate                                              # (N, E)
        noisy = std = None
        if self.w_noise is not None:
            std = F.softplus(x @ self.w_noise) + MIN_NOISE_STD                # (N, E)
            noisy = clean
            if self.training:
                eps = torch.randn(clean.shape, generator=checks.generator(generator),
                                  dtype=clean.dtype, device=clean.device)
                noisy = clean + eps * std
        top, experts = (clean if noisy is None else noisy).topk(self.k, dim=1)  # (N, k)
        kept = torch.ones_like(experts, dtype=torch.bool)
        return Routing(experts=experts, weights=top.softmax(dim=1), kept=kept,
                       dropped=torch.zeros_like(kept), num_experts=self.num_experts,
                       logits=clean, noisy_logits=noisy, noise_std=std)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, num_experts={self.num_experts}, k={self.k}, noisy={self.w_noise is not None}"


class TopKRouter(_GateRouter):
    """Softmax-then-top-k routing with an optional expert capacity.

    :math:`p(x) = \\mathrm{Softmax}(x W_g)`; each token goes to its ``k`` most probable
    experts with weight :math:`p_e(x)` (fedus2022switch Eq. 2 for ``k = 1``), or with the
    ``k`` probabilities renormalised to sum to 1 (``renormalize=True``, the form that leaves
    an upcycled layer's output unchanged, komatsuzaki2023sparse). With a capacity factor,
    each expert keeps its first ``expert_capacity(N, E, capacity_factor, k)`` slots in
    priority order and the rest are dropped (weight 0, ``Routing.dropped``).

    Args:
        d_model: C.
        num_experts: E.
        k: experts per token, ``1 <= k <= E``.
        capacity_factor: > 0, or None for no capacity (nothing dropped).
        renormalize: weights ``p_e / sum of the k kept p``.
        generator: draws ``W_g`` (truncated normal, std ``sqrt(0.1 / C)``, fedus2022switch).

    Shapes: ``x (N, C) -> Routing`` with ``K = k``.
    """

    def __init__(self, d_model: int, num_experts: int, k: int = 1, *, capacity_factor: float | None = None,
                 renormalize: bool = False, generator: torch.Generator | None = None):
        super().__init__(d_model, num_experts)
        self.k = checks.integer(k, "k", lo=1, hi=self.num_experts)
        if capacity_factor is not None:
            capacity_factor = checks.real(capacity_factor, "capacity_factor", lo=0.0, closed_low=False)
        self.capacity_factor = capacity_factor
        if not isinstance(renormalize, bool):
            raise TypeError(f"renormalize must be a bool (got {renormalize!r})")
        self.renormalize = renormalize
        self._switch_init(generator)

    def capacity(self, num_tokens: int) -> int | None:
        if self.capacity_factor is None:
            return None
        return expert_capacity(num_tokens, self.num_experts, self.capacity_factor, self.k)

    def forward(self, x: torch.Tensor, *, token_ids: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> Routing:
        x = check_tokens(x, self.d_model)
        logits = x @ self.w_gate                                             # (N, E)
        top, experts = logits.softmax(dim=1).topk(self.k, dim=1)             # (N, k)
        weights = top / top.sum(dim=1, keepdim=True) if self.renormalize else top
        kept = torch.ones_like(experts, dtype=torch.bool)
        dropped = torch.zeros_like(kept)
        capacity = self.capacity(x.shape[0])
        if capacity is not None:
            kept, dropped = apply_capacity(experts, kept, self.num_experts, capacity)
            weights = torch.where(kept, weights, torch.zeros_like(weights))
        return Routing(experts=experts, weights=weights, kept=kept, dropped=dropped,
                       num_experts=self.num_experts, logits=logits)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, num_experts={self.num_experts}, k={self.k}, "
                f"capacity_factor={self.capacity_factor}, renormalize={self.renormalize}")


class SwitchRouter(TopKRouter):
    """Switch routing (fedus2022switch Sec. 2.1-2.2): top-1, weight :math:`p_e(x)`, capacity
    ``ceil(capacity_factor * N / E)`` with overflowing tokens dropped in token order.

    Args:
        d_model: C.
        num_experts: E.
        capacity_factor: > 0 (default :data:`SWITCH_CAPACITY_FACTOR`), or None for no capacity.
        generator: draws ``W_g``.
    """

    def __init__(self, d_model: int, num_experts: int, capacity_factor: float | None = SWITCH_CAPACITY_FACTOR,
                 *, generator: torch.Generator | None = None):
        super().__init__(d_model, num_experts, 1, capacity_factor=capacity_factor, generator=generator)


class ExpertChoiceRouter(_GateRouter):
    """Expert-choice routing (zhou2022mixture Eq. 1): every expert picks its top-``c`` tokens.

    :math:`S = \\mathrm{Softmax}(X W_g)` over experts; expert ``e`` takes the ``c`` tokens with
    the largest :math:`S_{\\cdot e}` (ties to the lower token index), with
    ``c = min(N, ceil(capacity_factor * N / E))``, and weights them by :math:`S_{ne}`. A token
    may be picked by several experts or by none (it then skips the layer). The result is written
    with ``K = E`` slots per token: slot ``e`` is expert ``e``, kept when ``e`` picked the token.

    Warning:
        The choice of tokens is made jointly over all ``N`` tokens routed together, so in a
        causal language model a token's routing depends on *later* tokens of the batch: it
        leaks the future and the model's perplexity is not a valid causal perplexity. Use it
        on non-causal tasks (the book's mnist1d classifier), as zhou2022mixture discuss.

    Args:
        d_model: C.
        num_experts: E.
        capacity_factor: > 0, expert slots per token on average (default 2, the paper's c = 2).
        generator: draws ``W_g`` (the Switch initialisation).

    Shapes: ``x (N, C) -> Routing`` with ``K = E``; every expert has exactly ``c`` kept slots.
    """

    def __init__(self, d_model: int, num_experts: int, capacity_factor: float = EXPERT_CHOICE_CAPACITY_FACTOR,
                 *, generator: torch.Generator | None = None):
        super().__init__(d_model, num_experts)
        self.capacity_factor = checks.real(capacity_factor, "capacity_factor", lo=0.0, closed_low=False)
        self._switch_init(generator)

    def capacity(self, num_tokens: int) -> int:
        """``c = min(N, ceil(capacity_factor * N / E))``, tokens per expert."""
        return min(num_tokens, expert_capacity(num_tokens, self.num_experts, self.capacity_factor))

    def forward(self, x: torch.Tensor, *, token_ids: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> Routing:
        x = check_tokens(x, self.d_model)
        N, E = x.shape[0], self.num_experts
        logits = x @ self.w_gate                                             # (N, E)
        scores = logits.softmax(dim=1)                                       # S, (N, E)
        # stable descending sort: equal scores keep token order
        chosen = scores.t().argsort(dim=1, descending=True, stable=True)[:, :self.capacity(N)]  # (E, c)
        kept = torch.zeros(E, N, dtype=torch.bool, device=x.device).scatter_(1, chosen, True).t()
        experts = torch.arange(E, device=x.device).expand(N, E).contiguous()
        return Routing(experts=experts, weights=torch.where(kept, scores, torch.zeros_like(scores)),
                       kept=kept, dropped=torch.zeros_like(kept), num_experts=E, logits=logits)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, num_experts={self.num_experts}, capacity_factor={self.capacity_factor}"
