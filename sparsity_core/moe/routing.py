"""What a router decides, as one frozen record, and the capacity arithmetic routers share.

Every router of :mod:`sparsity_core.moe` turns ``N`` tokens into a :class:`Routing`: for
each token ``K`` *slots*, each naming an expert, a combine weight and whether it is kept.
The MoE output is then

.. math:: y_n = \\sum_{j<K,\\ \\mathrm{kept}_{n,j}} w_{n,j}\\, \\mathrm{expert}_{e_{n,j}}(x_n),

computed by :mod:`sparsity_core.moe.experts`; the balancing losses of
:mod:`sparsity_core.moe.losses` read the same record. Token choice (noisy top-k, Switch,
hashing) has ``K = k``; expert choice is written with ``K = E`` slots per token, slot ``e``
kept when expert ``e`` picked the token. Nothing is stored on a router module.

Capacity (lepikhin2021gshard, fedus2022switch Eq. 3): an expert holds at most
``capacity = ceil(capacity_factor * N * k / E)`` slots; :func:`slot_positions` numbers each
expert's slots in priority order (every token's first choice in token order, then every
second choice, ... as GShard; for top-1 simply token order) and :func:`apply_capacity` drops
those numbered ``>= capacity``. The capacity-padded expert implementation packs slots at
the same positions, so it and the routers agree on which slots are dropped.

Dimension letters (for the whole package): N tokens routed together (``B * T`` for a
TinyGPT FFN), C width, H expert hidden width, E experts, K slots per token.

Taught in: Chapter 5, "Mixture-of-experts".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import checks

__all__ = ["Routing", "expert_capacity", "slot_positions", "apply_capacity", "expert_counts",
           "dropped_fraction", "unrouted_fraction"]


@dataclass(frozen=True, eq=False)
class Routing:
    """A router's decision for ``N`` tokens, ``K`` slots each.

    Attributes:
        experts: ``(N, K)`` int64, the expert of each slot, in ``[0, E)``.
        weights: ``(N, K)`` float, the combine weights; 0 at slots that are not kept.
        kept: ``(N, K)`` bool, slots whose expert runs.
        dropped: ``(N, K)`` bool, slots the router chose but capacity dropped (a subset of
            ``~kept``; all False without a capacity).
        num_experts: E.
        logits: ``(N, E)`` the noise-free router logits ``x W_g``, or None (hashing).
        noisy_logits: ``(N, E)`` the logits the top-k was taken on, ``H(x)`` of
            shazeer2017outrageously Eq. 4 (equal to ``logits`` when no noise was drawn), or
            None for routers without noise.
        noise_std: ``(N, E)`` ``Softplus(x W_noise)``, the noise scale, or None.
    """

    experts: torch.Tensor
    weights: torch.Tensor
    kept: torch.Tensor
    dropped: torch.Tensor
    num_experts: int
    logits: torch.Tensor | None = None
    noisy_logits: torch.Tensor | None = None
    noise_std: torch.Tensor | None = None

    def __post_init__(self) -> None:
        E = checks.positive_int(self.num_experts, "num_experts")
        if not isinstance(self.experts, torch.Tensor) or self.experts.dim() != 2 \
                or self.experts.dtype != torch.long:
            raise ValueError("experts must be an (N, K) int64 tensor")
        shape = self.experts.shape
        if self.experts.numel() and (int(self.experts.min()) < 0 or int(self.experts.max()) >= E):
            raise ValueError(f"experts must lie in [0, {E})")
        if not isinstance(self.weights, torch.Tensor) or self.weights.shape != shape \
                or not self.weights.is_floating_point():
            raise ValueError(f"weights must be a float tensor of shape {tuple(shape)}")
        for name in ("kept", "dropped"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor) or value.shape != shape or value.dtype != torch.bool:
                raise ValueError(f"{name} must be a bool tensor of shape {tuple(shape)}")
        if bool((self.kept & self.dropped).any()):
            raise ValueError("a slot cannot be both kept and dropped")
        for name in ("logits", "noisy_logits", "noise_std"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, torch.Tensor) or value.shape != (shape[0], E)):
                raise ValueError(f"{name} must be None or a tensor of shape ({shape[0]}, {E})")

    @property
    def num_tokens(self) -> int:
        """N."""
        return self.experts.shape[0]

    @property
    def k(self) -> int:
        """K, slots per token."""
        return self.experts.shape[1]

    def gates(self) -> torch.Tensor:
        """``(N, E)`` the dense gate matrix ``G(x)``: each kept slot's weight at its expert,
        0 elsewhere (shazeer2017outrageously Eq. 3). Differentiable in ``weights``."""
        w = torch.where(self.kept, self.weights, torch.zeros_like(self.weights))
        return w.new_zeros(self.num_tokens, self.num_experts).scatter_add(1, self.experts, w)

    def probs(self) -> torch.Tensor:
        """``(N, E)`` ``softmax(logits)`` over all experts (fedus2022switch Eq. 1)."""
        if self.logits is None:
            raise ValueError("this routing has no router logits (hash routing)")
        return self.logits.softmax(dim=-1)


def expert_capacity(num_tokens: int, num_experts: int, capacity_factor: float, k: int = 1) -> int:
    """``ceil(capacity_factor * N * k / E)``, at least 1: the most slots one expert holds.

    fedus2022switch Eq. 3 (``k = 1``): expert capacity = tokens per batch / experts x
    capacity factor; for top-k the ``N k`` slots are shared out the same way (lepikhin2021gshard).
    """
    N = checks.positive_int(num_tokens, "num_tokens")
    E = checks.positive_int(num_experts, "num_experts")
    k = checks.positive_int(k, "k")
    cf = checks.real(capacity_factor, "capacity_factor", lo=0.0, closed_low=False)
    # rounded to 9 digits first so that e.g. 1.1 * 10 / 11 counts as 1, not 1.0000000000000002
    return max(1, math.ceil(round(cf * N * k / E, 9)))


def slot_positions(experts: torch.Tensor, kept: torch.Tensor, num_experts: int) -> torch.Tensor:
    """``(N, K)`` int64: how many kept slots precede each slot on its expert.

    Priority order: all slots of choice 0 in token order, then all of choice 1, ... (the
    GShard order; for ``K = 1`` token order). Slots that are not kept get -1.

    Args:
        experts: ``(N, K)`` int64 in ``[0, E)``.
        kept: ``(N, K)`` bool.
        num_experts: E.
    """
    if experts.shape != kept.shape or experts.dim() != 2:
        raise ValueError(f"experts and kept must both be (N, K) (got {tuple(experts.shape)} "
                         f"and {tuple(kept.shape)})")
    E = checks.positive_int(num_experts, "num_experts")
    order_e = experts.t().reshape(-1)                                   # (K N,), priority order
    onehot = torch.nn.functional.one_hot(order_e, E) * kept.t().reshape(-1, 1)   # (K N, E)
    before = onehot.cumsum(0) - onehot                                  # kept slots earlier
    pos = before.gather(1, order_e[:, None]).reshape(experts.shape[1], experts.shape[0]).t()
    return torch.where(kept, pos, torch.full_like(pos, -1))


def apply_capacity(experts: torch.Tensor, kept: torch.Tensor, num_experts: int,
                   capacity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept, dropped)`` after each expert keeps its first ``capacity`` slots.

    Args:
        experts: ``(N, K)`` int64.
        kept: ``(N, K)`` bool, the slots before capacity.
        num_experts: E.
        capacity: slots per expert, >= 1.

    Returns:
        ``(N, K)`` bool twice: slots kept, and slots that ``kept`` had but capacity dropped.
    """
    capacity = checks.positive_int(capacity, "capacity")
    pos = slot_positions(experts, kept, num_experts)
    fits = kept & (pos < capacity)
    return fits, kept & ~fits


def expert_counts(routing: Routing) -> torch.Tensor:
    """``(E,)`` int64: kept slots per expert (the realised load; sums to ``N K`` without drops)."""
    return torch.bincount(routing.experts[routing.kept], minlength=routing.num_experts)


def dropped_fraction(routing: Routing) -> float:
    """Dropped slots over chosen slots (kept + dropped): Switch's dropped-token fraction."""
    chosen = int(routing.kept.sum()) + int(routing.dropped.sum())
    return int(routing.dropped.sum()) / chosen if chosen else 0.0


def unrouted_fraction(routing: Routing) -> float:
    """Fraction of tokens with no kept slot: they skip the layer through the residual
    (Switch's dropped tokens; expert choice's tokens no expert picked, zhou2022mixture)."""
    if routing.num_tokens == 0:
        return 0.0
    return int((~routing.kept.any(dim=1)).sum()) / routing.num_tokens
