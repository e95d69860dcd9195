"""E two-layer MLP experts, stored stacked, and three ways to run a routing through them.

Expert ``e`` is ``expert_e(x) = GELU(x W1[e] + b1[e]) W2[e] + b2[e]`` with ``W1`` ``(E, C, H)``
and ``W2`` ``(E, H, C)`` (the GPT-2 FFN of each expert, as TinyGPT's ``FeedForward``). All
three functions below compute, for ``x`` ``(N, C)`` and ``K`` slots per token,

.. math:: y_n = \\sum_{j<K,\\ \\mathrm{kept}_{n,j}} w_{n,j}\\, \\mathrm{expert}_{e_{n,j}}(x_n)

(shazeer2017outrageously Eq. 1), equal in values and in gradients with respect to ``x``,
``w`` and the expert weights:

* :func:`loop_experts`: one token and one slot at a time, the slow obvious twin (the idea of
  scattermoe's ``tests/test_mlp.py::dumb_forward``);
* :func:`grouped_experts`: sort the kept slots by expert, one matmul per expert's contiguous
  segment, scatter-add back: no padding and no slot computed twice (tan2024scattered's
  sorted-index formulation, in plain PyTorch; ScatterMoE fuses the gather and the grouped
  matmul in a Triton kernel);
* :func:`padded_experts`: pack each expert's slots into an ``(E, capacity, C)`` buffer at the
  positions of :func:`~sparsity_core.moe.routing.slot_positions`, one batched matmul for all
  experts, gather back (GShard / Switch dispatch, lepikhin2021gshard); slots beyond the
  capacity contribute 0, and ``E * capacity - kept`` rows of the buffer are padding
  (:func:`padded_slot_count`).

References: tan2024scattered; shawntan/scattermoe ``scattermoe/mlp.py`` and
``tests/test_mlp.py`` (read, not copied).

Taught in: Chapter 5, "Mixture-of-experts" ("Going fast").
"""
from __future__ import annotations

import math
from types import MappingProxyType
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from .routing import Routing, expert_counts, slot_positions

__all__ = ["Experts", "expert_mlp", "loop_experts", "grouped_experts", "padded_experts",
           "padded_slot_count", "IMPLEMENTATIONS"]


def expert_mlp(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor | None, w2: torch.Tensor,
               b2: torch.Tensor | None) -> torch.Tensor:
    """One expert: ``GELU(x w1 + b1) w2 + b2``; ``x (*, C)``, ``w1 (C, H)``, ``w2 (H, C)`` -> ``(*, C)``."""
    h = x @ w1
    if b1 is not None:
        h = h + b1
    y = F.gelu(h) @ w2
    return y if b2 is None else y + b2


class Experts(nn.Module):
    """E experts ``C -> H -> C`` with GELU, weights stacked.

    Parameters: ``w1`` ``(E, C, H)``, ``w2`` ``(E, H, C)``, and with ``bias`` ``b1`` ``(E, H)``,
    ``b2`` ``(E, C)``. Initialised as E independent ``nn.Linear`` pairs would be:
    uniform in :math:`\\pm 1/\\sqrt{\\text{fan-in}}` (weights and biases), drawn from
    ``generator``. They are plain parameters, so TinyGPT's ``nn.Linear`` initialisation
    leaves them alone.

    Args:
        num_experts: E.
        d_model: C.
        d_hidden: H.
        bias: biases in both layers.
        generator: draws the initial weights.
    """

    def __init__(self, num_experts: int, d_model: int, d_hidden: int, *, bias: bool = True,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.num_experts = checks.positive_int(num_experts, "num_experts")
        self.d_model = checks.positive_int(d_model, "d_model")
        self.d_hidden = checks.positive_int(d_hidden, "d_hidden")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool (got {bias!r})")
        E, C, H = self.num_experts, self.d_model, self.d_hidden
        self.w1 = nn.Parameter(torch.empty(E, C, H))
        self.w2 = nn.Parameter(torch.empty(E, H, C))
        self.b1 = nn.Parameter(torch.empty(E, H)) if bias else None
        self.b2 = nn.Parameter(torch.empty(E, C)) if bias else None
        self.reset_parameters(generator)

    @classmethod
    def from_weights(cls, w1: torch.Tensor, b1: torch.Tensor | None, w2: torch.Tensor,
                     b2: torch.Tensor | None) -> "Experts":
        """Experts holding copies of ``w1 (E, C, H)``, ``b1 (E, H)``, ``w2 (E, H, C)``, ``b2 (E, C)``
        (both biases or neither); dtype and device follow ``w1``. The global RNG is not used."""
        if not isinstance(w1, torch.Tensor) or not isinstance(w2, torch.Tensor) or w1.dim() != 3:
            raise ValueError("w1 must be an (E, C, H) tensor and w2 an (E, H, C) tensor")
        E, C, H = w1.shape
        if w2.shape != (E, H, C):
            raise ValueError(f"w2 must have shape {(E, H, C)} (got {tuple(w2.shape)})")
        if (b1 is None) != (b2 is None):
            raise ValueError("give both biases or neither")
        if b1 is not None and (b1.shape != (E, H) or b2.shape != (E, C)):
            raise ValueError(f"b1 must be {(E, H)} and b2 {(E, C)} (got {tuple(b1.shape)}, {tuple(b2.shape)})")
        experts = cls(E, C, H, bias=b1 is not None, generator=torch.Generator())   # overwritten below
        experts.to(device=w1.device, dtype=w1.dtype)
        with torch.no_grad():
            for p, value in zip((experts.w1, experts.b1, experts.w2, experts.b2), (w1, b1, w2, b2)):
                if p is not None:
                    p.copy_(value)
        return experts

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Uniform in ``+-1/sqrt(fan_in)``: ``nn.Linear``'s default, per expert."""
        gen = checks.generator(generator)
        for w, b, fan_in in ((self.w1, self.b1, self.d_model), (self.w2, self.b2, self.d_hidden)):
            bound = 1 / math.sqrt(fan_in)
            w.uniform_(-bound, bound, generator=gen)
            if b is not None:
                b.uniform_(-bound, bound, generator=gen)

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """``expert_e(x)`` for ``x (*, C)``."""
        e = checks.integer(e, "e", lo=0, hi=self.num_experts - 1)
        return expert_mlp(x, self.w1[e], None if self.b1 is None else self.b1[e],
                          self.w2[e], None if self.b2 is None else self.b2[e])

    def forward(self, x: torch.Tensor, routing: Routing, *, impl: str = "grouped",
                capacity: int | None = None) -> torch.Tensor:
        """``y (N, C)`` for ``x (N, C)`` routed by ``routing``, with implementation ``impl``
        (``"loop"``, ``"grouped"`` or ``"padded"``). ``capacity`` is for ``"padded"`` only;
        None pads to the largest expert load (nothing dropped)."""
        if not isinstance(routing, Routing):
            raise TypeError(f"routing must be a Routing (got {type(routing).__name__})")
        if routing.num_experts != self.num_experts:
            raise ValueError(f"routing is over {routing.num_experts} experts, this layer has {self.num_experts}")
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"impl must be one of {sorted(IMPLEMENTATIONS)} (got {impl!r})")
        if impl == "padded":
            return padded_experts(self, x, routing.weights, routing.experts, routing.kept, capacity=capacity)
        if capacity is not None:
            raise ValueError(f"capacity is for impl='padded' only (got impl={impl!r})")
        return IMPLEMENTATIONS[impl](self, x, routing.weights, routing.experts, routing.kept)

    def extra_repr(self) -> str:
        return (f"num_experts={self.num_experts}, d_model={self.d_model}, d_hidden={self.d_hidden}, "
                f"bias={self.b1 is not None}")


def _check(experts: Experts, x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor,
           kept: torch.Tensor | None) -> torch.Tensor:
    """Validate the arguments shared by the three implementations; return ``kept``."""
    if not isinstance(experts, Experts):
        raise TypeError(f"experts must be an Experts module (got {type(experts).__name__})")
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != experts.d_model:
        raise ValueError(f"x must have shape (N, {experts.d_model}) (got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__})")
    if not isinstance(indices, torch.Tensor) or indices.dim() != 2 or indices.shape[0] != x.shape[0] \
            or indices.dtype != torch.long:
        raise ValueError(f"indices must be an int64 tensor (N={x.shape[0]}, K)")
    if not isinstance(weights, torch.Tensor) or weights.shape != indices.shape:
        raise ValueError(f"weights must have the shape of indices {tuple(indices.shape)}")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= experts.num_experts):
        raise ValueError(f"indices must lie in [0, {experts.num_experts})")
    if kept is None:
        return torch.ones_like(indices, dtype=torch.bool)
    if not isinstance(kept, torch.Tensor) or kept.shape != indices.shape or kept.dtype != torch.bool:
        raise ValueError(f"kept must be None or a bool tensor of shape {tuple(indices.shape)}")
    return kept


def loop_experts(experts: Experts, x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor,
                 kept: torch.Tensor | None = None) -> torch.Tensor:
    """The per-token loop: ``y_n = sum_j w_nj expert_{e_nj}(x_n)`` over kept slots.

    Args:
        experts: the expert weights.
        x: ``(N, C)``.
        weights: ``(N, K)`` combine weights.
        indices: ``(N, K)`` int64 expert of each slot.
        kept: ``(N, K)`` bool, or None for all slots.

    Returns:
        ``(N, C)``; a token with no kept slot gets 0.
    """
    kept = _check(experts, x, weights, indices, kept)
    rows = []
    for n in range(x.shape[0]):
        y = x.new_zeros(experts.d_model)
        for j in range(indices.shape[1]):
            if kept[n, j]:
                y = y + weights[n, j] * experts.expert(int(indices[n, j]), x[n])
        rows.append(y)
    return torch.stack(rows) if rows else x.new_zeros(0, experts.d_model)


def _kept_slots(kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(token, slot)`` indices of the kept slots, in row-major order."""
    return kept.nonzero(as_tuple=True)


def grouped_experts(experts: Experts, x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor,
                    kept: torch.Tensor | None = None) -> torch.Tensor:
    """Sorted, padding-free grouped experts (tan2024scattered): same arguments and result as
    :func:`loop_experts`.

    The ``M`` kept slots are sorted by expert (stably, so each segment is in token order);
    ``x`` is gathered once into ``(M, C)``, each expert runs one ``(M_e, C) @ (C, H)`` and one
    ``(M_e, H) @ (H, C)`` matmul on its segment (an empty segment costs nothing), and the
    weighted rows are ``index_add``-ed back to their tokens.
    """
    kept = _check(experts, x, weights, indices, kept)
    tokens, slots = _kept_slots(kept)                                        # (M,), (M,)
    e_of = indices[tokens, slots]                                            # (M,)
    order = torch.argsort(e_of, stable=True)
    tokens, slots = tokens[order], slots[order]
    sizes = torch.bincount(e_of, minlength=experts.num_experts).tolist()     # M_e
    xs = x[tokens]                                                           # (M, C), sorted by expert
    # unbind once: indexing w1[e] per expert would make autograd scatter E full-size (E, C, H)
    # gradients (one per expert) where unbind's backward stacks the E slices once
    w1, w2 = experts.w1.unbind(0), experts.w2.unbind(0)
    b1 = experts.b1.unbind(0) if experts.b1 is not None else [None] * experts.num_experts
    b2 = experts.b2.unbind(0) if experts.b2 is not None else [None] * experts.num_experts
    out = torch.cat([expert_mlp(seg, w1[e], b1[e], w2[e], b2[e]) if len(seg) else seg
                     for e, seg in enumerate(xs.split(sizes))])                             # (M, C)
    out = out * weights[tokens, slots][:, None]
    return x.new_zeros(x.shape[0], experts.d_model).index_add(0, tokens, out)


def padded_experts(experts: Experts, x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor,
                   kept: torch.Tensor | None = None, *, capacity: int | None = None) -> torch.Tensor:
    """Capacity-padded batched experts: same arguments and result as :func:`loop_experts`
    when no kept slot overflows ``capacity``.

    Each kept slot goes to row ``slot_positions(...)`` of its expert's block of an
    ``(E, capacity, C)`` buffer (zeros elsewhere); slots at positions ``>= capacity`` are
    dropped and contribute 0 (the same slots :func:`~sparsity_core.moe.routing.apply_capacity`
    drops). Two ``bmm`` calls run every expert on its whole block, padding included.

    Args:
        capacity: rows per expert, >= 1; None: the largest number of kept slots on one expert.
    """
    kept = _check(experts, x, weights, indices, kept)
    E, C = experts.num_experts, experts.d_model
    if capacity is None:
        capacity = max(1, int(torch.bincount(indices[kept], minlength=E).max()))
    capacity = checks.positive_int(capacity, "capacity")
    pos = slot_positions(indices, kept, E)                                   # (N, K)
    fits = kept & (pos < capacity)
    tokens, slots = _kept_slots(fits)
    rows = indices[tokens, slots] * capacity + pos[tokens, slots]            # (M,) row in (E * cap)
    buffer = x.new_zeros(E * capacity, C).index_copy(0, rows, x[tokens])     # (E cap, C)
    h = torch.bmm(buffer.view(E, capacity, C), experts.w1)                   # (E, cap, H)
    if experts.b1 is not None:
        h = h + experts.b1[:, None, :]
    out = torch.bmm(F.gelu(h), experts.w2)                                   # (E, cap, C)
    if experts.b2 is not None:
        out = out + experts.b2[:, None, :]
    out = out.reshape(E * capacity, C)[rows] * weights[tokens, slots][:, None]   # (M, C)
    return x.new_zeros(x.shape[0], C).index_add(0, tokens, out)


def padded_slot_count(routing: Routing, capacity: int) -> int:
    """Rows of the ``(E, capacity, C)`` buffer that hold no slot: ``E * capacity`` minus the
    kept slots that fit (0 for :func:`grouped_experts`, which has no buffer)."""
    capacity = checks.positive_int(capacity, "capacity")
    return routing.num_experts * capacity - int(expert_counts(routing).clamp(max=capacity).sum())


#: The implementations by name, each ``f(experts, x, weights, indices, kept)``.
IMPLEMENTATIONS: Mapping[str, Callable[..., torch.Tensor]] = MappingProxyType({
    "loop": loop_experts, "grouped": grouped_experts, "padded": padded_experts,
})
