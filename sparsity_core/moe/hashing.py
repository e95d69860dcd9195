"""Hash routing: a fixed table sends each token id to one expert (roller2021hash).

The router has no parameters and needs no balancing loss: token ``t`` goes to expert
``table[t]`` with weight 1, ``K = 1``. Two tables:

* :func:`random_hash_table`: a random assignment that gives every expert the same number of
  token *ids* (``randperm(V) mod E``), Roller et al.'s random hash;
* :func:`balanced_hash_table`: Roller et al.'s balanced assignment for a known frequency
  table: ids sorted by frequency (most frequent first, ties to the lower id) each go to the
  expert with the least total frequency so far (ties to the one with fewer ids, then the
  lower index). This greedy list scheduling guarantees max load <= mean load + the largest
  single frequency.

Reference: facebookresearch/ParlAI ``projects/params_vs_compute/hash_ladder/hash_ladder.py``
(read, not copied). Deviation: ParlAI precomputes its hash from the training set's
frequencies in a separate script; here the caller passes the frequency table (e.g.
``torch.bincount`` of the training ids), so the assignment is a pure function of it.

Taught in: Chapter 5, "Mixture-of-experts".
"""
from __future__ import annotations

import heapq

import torch
from torch import nn

from .. import checks
from .routers import check_tokens
from .routing import Routing

__all__ = ["random_hash_table", "balanced_hash_table", "HashRouter"]


def random_hash_table(vocab_size: int, num_experts: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(V,)`` int64 in ``[0, E)``: ``randperm(V) mod E``, each expert owning ``V // E`` or
    ``V // E + 1`` ids. Deterministic given ``generator``."""
    V = checks.positive_int(vocab_size, "vocab_size")
    E = checks.positive_int(num_experts, "num_experts")
    return torch.randperm(V, generator=checks.generator(generator)) % E


def balanced_hash_table(frequencies: torch.Tensor, num_experts: int) -> torch.Tensor:
    """``(V,)`` int64: the greedy frequency-balanced assignment of token ids to experts.

    Args:
        frequencies: ``(V,)`` finite, non-negative counts (or probabilities) of each token id.
        num_experts: E.

    Returns:
        ``table`` with ``table[t]`` the expert of id ``t``; the per-expert load
        ``bincount(table, weights=frequencies)`` has max <= mean + ``frequencies.max()``.
    """
    if not isinstance(frequencies, torch.Tensor) or frequencies.dim() != 1 or frequencies.numel() == 0:
        raise ValueError("frequencies must be a non-empty 1-D tensor (V,)")
    freqs = frequencies.detach().double()
    if not bool(torch.isfinite(freqs).all()) or bool((freqs < 0).any()):
        raise ValueError("frequencies must be finite and >= 0")
    E = checks.positive_int(num_experts, "num_experts")
    order = torch.argsort(-freqs, stable=True).tolist()          # most frequent first, ties by id
    heap = [(0.0, 0, e) for e in range(E)]                       # (load, ids held, expert)
    table = [0] * len(order)
    for t in order:
        load, held, e = heapq.heappop(heap)
        table[t] = e
        heapq.heappush(heap, (load + float(freqs[t]), held + 1, e))
    return torch.tensor(table, dtype=torch.long)


class HashRouter(nn.Module):
    """Route each token by a fixed table of its id (roller2021hash): ``K = 1``, weight 1.

    Build with :meth:`random` or :meth:`balanced`, or from any table. The table is a buffer
    (saved with the model, no gradient).

    Args:
        table: ``(V,)`` integers in ``[0, E)``.
        num_experts: E.

    Shapes: ``x (N, C)`` (read only for N and dtype) and ``token_ids (N,)`` integers in
    ``[0, V)`` ``-> Routing`` with ``logits=None``.
    """

    def __init__(self, table: torch.Tensor, num_experts: int):
        super().__init__()
        self.num_experts = checks.positive_int(num_experts, "num_experts")
        if not isinstance(table, torch.Tensor) or table.dim() != 1 or table.numel() == 0 \
                or table.dtype.is_floating_point or table.dtype == torch.bool:
            raise ValueError("table must be a non-empty 1-D integer tensor (V,)")
        if int(table.min()) < 0 or int(table.max()) >= self.num_experts:
            raise ValueError(f"table entries must lie in [0, {self.num_experts})")
        self.register_buffer("table", table.detach().long().clone())

    @classmethod
    def random(cls, vocab_size: int, num_experts: int, generator: torch.Generator | None = None) -> "HashRouter":
        """A router with :func:`random_hash_table`."""
        return cls(random_hash_table(vocab_size, num_experts, generator), num_experts)

    @classmethod
    def balanced(cls, frequencies: torch.Tensor, num_experts: int) -> "HashRouter":
        """A router with :func:`balanced_hash_table` of ``frequencies`` ``(V,)``."""
        return cls(balanced_hash_table(frequencies, num_experts), num_experts)

    @property
    def vocab_size(self) -> int:
        return self.table.numel()

    def capacity(self, num_tokens: int) -> None:
        """Hash routing has no capacity."""
        return None

    def forward(self, x: torch.Tensor, *, token_ids: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> Routing:
        if token_ids is None:
            raise ValueError("HashRouter needs token_ids (N,), the ids of the tokens being routed")
        if not isinstance(token_ids, torch.Tensor) or token_ids.dtype.is_floating_point \
                or token_ids.dtype.is_complex or token_ids.dtype == torch.bool:
            raise TypeError("token_ids must be an integer tensor (got "
                            f"{token_ids.dtype if isinstance(token_ids, torch.Tensor) else type(token_ids).__name__})")
        x = check_tokens(x, None)
        if token_ids.shape != (x.shape[0],):
            raise ValueError(f"token_ids must have shape ({x.shape[0]},) (got {tuple(token_ids.shape)})")
        if int(token_ids.min()) < 0 or int(token_ids.max()) >= self.vocab_size:
            raise ValueError(f"token_ids must lie in [0, {self.vocab_size})")
        experts = self.table[token_ids.long()][:, None]                      # (N, 1)
        kept = torch.ones_like(experts, dtype=torch.bool)
        return Routing(experts=experts, weights=torch.ones(experts.shape, dtype=x.dtype, device=x.device),
                       kept=kept, dropped=torch.zeros_like(kept), num_experts=self.num_experts)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, num_experts={self.num_experts}"
