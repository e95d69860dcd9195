"""Timing the expert implementations against the dense FFN of equal active FLOPs.

:func:`time_experts` times, for one (tokens T, experts E, k), the per-token loop, the sorted
grouped experts (tan2024scattered's padding-free formulation in plain PyTorch), the
capacity-padded experts (fedus2022switch) and one dense GELU FFN ``C -> k H -> C`` (the
same active multiply-adds per token), forward and forward+backward, on one ``Routing`` of a
softmax top-k router (router time excluded). Used by ``ci/bench_moe.py`` and Chapter 5's
"Going fast".

Taught in: Chapter 5, "Mixture-of-experts".
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .. import checks
from ..bench import time_call
from .experts import Experts
from .routers import TopKRouter
from .routing import expert_capacity

__all__ = ["BENCH_D_MODEL", "BENCH_D_HIDDEN", "time_experts"]

#: The issue's benchmark sizes: width C and expert hidden width H.
BENCH_D_MODEL, BENCH_D_HIDDEN = 256, 1024


def time_experts(tokens: int, num_experts: int, k: int, *, d_model: int = BENCH_D_MODEL,
                 d_hidden: int = BENCH_D_HIDDEN,
                 capacity_factor: float = 1.25, repeat: int = 5, loop_max: int = 512, seed: int = 0) -> list[dict]:
    """Rows ``{tokens, experts, k, impl, pass, us, rows}`` for one (tokens, experts, k).

    ``impl`` is ``loop`` (skipped above ``loop_max`` tokens), ``grouped``, ``padded`` (at
    ``capacity_factor``) or ``dense``; ``pass`` is ``forward`` or ``forward+backward``; ``us``
    the fastest of ``repeat`` interleaved rounds (each round times every implementation and
    pass once, after one warm-up call each), in microseconds per call; ``rows`` the rows each implementation
    multiplies (padding rows included; the dispatch buffer holds ``rows x C`` floats).
    """
    checks.positive_int(tokens, "tokens")
    checks.integer(k, "k", lo=1, hi=checks.positive_int(num_experts, "num_experts"))
    g = torch.Generator().manual_seed(seed)
    experts = Experts(num_experts, d_model, d_hidden, generator=g)
    router = TopKRouter(d_model, num_experts, k)
    with torch.no_grad():
        router.w_gate.copy_(torch.randn(router.w_gate.shape, generator=g))
    dense = Experts(1, d_model, k * d_hidden, generator=g)     # one C -> kH -> C GELU FFN, the same MLP
    x = torch.randn(tokens, d_model, generator=g)
    with torch.no_grad():
        routing = router(x)
    capacity = expert_capacity(tokens, num_experts, capacity_factor, k)
    impls = {
        "loop": lambda xx: experts(xx, routing, impl="loop"),
        "grouped": lambda xx: experts(xx, routing, impl="grouped"),
        "padded": lambda xx: experts(xx, routing, impl="padded", capacity=capacity),
        "dense": lambda xx: dense.expert(0, xx),
    }
    if tokens > loop_max:
        impls.pop("loop")
    # the three MoE implementations agree where nothing overflows (checked on the uncapped padded)
    with torch.no_grad():
        torch.testing.assert_close(experts(x, routing, impl="grouped"), experts(x, routing, impl="padded"),
                                   rtol=1e-4, atol=1e-5)
    kept = int(routing.kept.sum())
    rows = {"loop": kept, "grouped": kept, "padded": num_experts * capacity, "dense": tokens}
    xg = x.clone().requires_grad_(True)
    params = list(experts.parameters()) + list(dense.parameters())

    def forward(fn: Callable) -> Callable[[], object]:
        def call():
            with torch.no_grad():
                return fn(x)
        return call

    def forward_backward(fn: Callable) -> Callable[[], None]:
        def call():
            for p in params:
                p.grad = None
            fn(xg).sum().backward()
        return call

    calls = {(name, which): make(fn) for name, fn in impls.items()
             for which, make in (("forward", forward), ("forward+backward", forward_backward))}
    for call in calls.values():                                   # one untimed warm-up call each
        call()
    best = dict.fromkeys(calls, math.inf)
    for _ in range(repeat):        # interleaved rounds: a slow spell of the machine hits every implementation
        for key, call in calls.items():
            best[key] = min(best[key], time_call(call, repeat=1, warmup=0, min_seconds=0.01).repeats[0])
    return [{"tokens": tokens, "experts": num_experts, "k": k, "impl": name, "pass": which,
             "us": 1e6 * best[name, which], "rows": rows[name]} for name, which in calls]
