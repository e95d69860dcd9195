"""The MoE FFN that drops into TinyGPT's FFN slot, its config, and sparse upcycling.

:class:`MoEFFN` holds a router and an :class:`~sparsity_core.moe.experts.Experts`; called on
``(B, T, C)`` (or any ``(*, C)``) it routes the ``N = B T`` tokens together, runs the experts
and returns a :class:`~sparsity_core.models.BlockOutput` ``(out, aux)`` whose ``aux`` holds
each balancing loss of :data:`~sparsity_core.moe.losses.LOSSES` named in ``aux_weights``,
already multiplied by its weight; TinyGPT sums them over layers into ``GPTOutput.aux``.

Sparse upcycling (komatsuzaki2023sparse, Sec. 3 and Fig. 1): every expert starts as an
identical copy of a trained dense FFN and only the router is new. If each token's combine
weights sum to 1 and nothing is dropped, :math:`\\sum_j w_j\\, \\mathrm{FFN}(x) = \\mathrm{FFN}(x)`:
the model computes the same function at surgery (up to float rounding). A Switch router
weighting by :math:`p < 1` does not: use :class:`~sparsity_core.moe.routers.NoisyTopKRouter`
(softmax over the kept logits) or :class:`~sparsity_core.moe.routers.TopKRouter` with
``renormalize=True``, and no capacity. The paper copies optimizer state too; here only weights.

Taught in: Chapter 5, "Mixture-of-experts".
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Collection, Mapping

import torch
from torch import nn

from .. import checks
from ..models.tinygpt import BlockOutput, FeedForward, TinyGPT, TinyGPTConfig
from .experts import IMPLEMENTATIONS, Experts
from .losses import LOSSES
from .routers import ExpertChoiceRouter, NoisyTopKRouter, TopKRouter
from .routing import Routing

__all__ = ["ROUTER_KINDS", "MoEConfig", "MoEFFN", "build_router", "moe_ffn", "upcycle", "upcycle_tinygpt"]

#: Router kinds a :class:`MoEConfig` can name (hash routing needs a table: build a
#: :class:`~sparsity_core.moe.hashing.HashRouter` and pass it to :class:`MoEFFN` directly).
ROUTER_KINDS = ("noisy_topk", "topk", "expert_choice")


def _check_aux_weights(aux_weights: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(aux_weights, Mapping):
        raise TypeError(f"aux_weights must be a mapping name -> weight (got {type(aux_weights).__name__})")
    unknown = sorted(set(aux_weights) - set(LOSSES))
    if unknown:
        raise ValueError(f"unknown aux losses {unknown}; known: {sorted(LOSSES)}")
    return {name: checks.nonnegative(w, f"aux_weights[{name!r}]") for name, w in aux_weights.items()}


@dataclass(frozen=True)
class MoEConfig:
    """The shape of one MoE FFN.

    Args:
        num_experts: E.
        k: experts per token for token-choice routers (ignored by expert choice).
        router: one of :data:`ROUTER_KINDS`.
        capacity_factor: ``"topk"``: None (no capacity) or > 0; ``"expert_choice"``: > 0
            (None means the paper's 2); ``"noisy_topk"``: must be None.
        renormalize: ``"topk"`` only: the k weights sum to 1.
        d_hidden: H per expert; None takes the host's hidden width (TinyGPT's ``d_ff``).
        impl: expert implementation, ``"grouped"``, ``"padded"`` or ``"loop"``.
        aux_weights: balancing-loss name -> weight, e.g. ``SHAZEER_AUX_WEIGHTS``.

    Paper settings: Shazeer et al. ``MoEConfig(E, k=4, aux_weights=SHAZEER_AUX_WEIGHTS)``;
    Switch ``MoEConfig(E, k=1, router="topk", capacity_factor=1.0, aux_weights=SWITCH_AUX_WEIGHTS)``;
    expert choice ``MoEConfig(E, router="expert_choice", capacity_factor=2.0)``.
    """

    num_experts: int
    k: int = 1
    router: str = "noisy_topk"
    capacity_factor: float | None = None
    renormalize: bool = False
    d_hidden: int | None = None
    impl: str = "grouped"
    aux_weights: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks.positive_int(self.num_experts, "num_experts")
        checks.integer(self.k, "k", lo=1, hi=self.num_experts)
        if self.router not in ROUTER_KINDS:
            raise ValueError(f"router must be one of {ROUTER_KINDS} (got {self.router!r})")
        if self.capacity_factor is not None:
            checks.real(self.capacity_factor, "capacity_factor", lo=0.0, closed_low=False)
            if self.router == "noisy_topk":
                raise ValueError("noisy_topk routing has no capacity: leave capacity_factor None")
        if not isinstance(self.renormalize, bool):
            raise TypeError(f"renormalize must be a bool (got {self.renormalize!r})")
        if self.d_hidden is not None:
            checks.positive_int(self.d_hidden, "d_hidden")
        if self.impl not in IMPLEMENTATIONS:
            raise ValueError(f"impl must be one of {sorted(IMPLEMENTATIONS)} (got {self.impl!r})")
        object.__setattr__(self, "aux_weights", MappingProxyType(_check_aux_weights(self.aux_weights)))


def build_router(config: MoEConfig, d_model: int, generator: torch.Generator | None = None) -> nn.Module:
    """The router ``config`` names, for width ``d_model`` (``generator`` draws its weights;
    noisy top-k starts at zero)."""
    if not isinstance(config, MoEConfig):
        raise TypeError(f"config must be a MoEConfig (got {type(config).__name__})")
    E = config.num_experts
    if config.router == "noisy_topk":
        return NoisyTopKRouter(d_model, E, config.k)
    if config.router == "topk":
        return TopKRouter(d_model, E, config.k, capacity_factor=config.capacity_factor,
                          renormalize=config.renormalize, generator=generator)
    cf = 2.0 if config.capacity_factor is None else config.capacity_factor
    return ExpertChoiceRouter(d_model, E, cf, generator=generator)


class MoEFFN(nn.Module):
    """A mixture-of-experts FFN: ``y = sum_j w_j expert_{e_j}(x)`` over the router's kept slots.

    Args:
        router: a router of :mod:`sparsity_core.moe` (called as ``router(x, token_ids=...,
            generator=...)``, returning a :class:`~sparsity_core.moe.routing.Routing`).
        experts: the :class:`~sparsity_core.moe.experts.Experts`; its E must match the router's.
        impl: ``"grouped"`` (default), ``"padded"`` (padded to the router's capacity, or to the
            largest load when it has none) or ``"loop"``.
        aux_weights: loss name -> weight; each named loss is returned in ``aux``.
        dropout: on the output, as TinyGPT's ``FeedForward``.

    Shapes: ``(*, C) -> BlockOutput((*, C), aux)``; ``token_ids`` ``(*)`` for a hash router.
    """

    def __init__(self, router: nn.Module, experts: Experts, *, impl: str = "grouped",
                 aux_weights: Mapping[str, float] | None = None, dropout: float = 0.0):
        super().__init__()
        if not isinstance(router, nn.Module) or not hasattr(router, "num_experts"):
            raise TypeError(f"router must be a router module of sparsity_core.moe (got {type(router).__name__})")
        if not isinstance(experts, Experts):
            raise TypeError(f"experts must be an Experts module (got {type(experts).__name__})")
        if router.num_experts != experts.num_experts:
            raise ValueError(f"the router has {router.num_experts} experts, experts has {experts.num_experts}")
        if getattr(router, "d_model", experts.d_model) != experts.d_model:
            raise ValueError(f"the router's d_model {router.d_model} != the experts' {experts.d_model}")
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"impl must be one of {sorted(IMPLEMENTATIONS)} (got {impl!r})")
        self.router, self.experts, self.impl = router, experts, impl
        self.aux_weights = _check_aux_weights({} if aux_weights is None else aux_weights)
        self.dropout = nn.Dropout(checks.fraction(dropout, "dropout", closed_high=False))

    @classmethod
    def from_config(cls, config: MoEConfig, d_model: int, d_hidden: int | None = None, *, bias: bool = True,
                    dropout: float = 0.0, generator: torch.Generator | None = None) -> "MoEFFN":
        """Build router and experts from a :class:`MoEConfig` (``config.d_hidden`` wins over
        ``d_hidden``; one of them must be given)."""
        if not isinstance(config, MoEConfig):
            raise TypeError(f"config must be a MoEConfig (got {type(config).__name__})")
        H = config.d_hidden if config.d_hidden is not None else d_hidden
        if H is None:
            raise ValueError("d_hidden must be given when config.d_hidden is None")
        experts = Experts(config.num_experts, d_model, H, bias=bias, generator=generator)
        return cls(build_router(config, d_model, generator), experts, impl=config.impl,
                   aux_weights=config.aux_weights, dropout=dropout)

    def route(self, x: torch.Tensor, *, token_ids: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> Routing:
        """The routing of the ``N`` tokens of ``x (*, C)``, flattened in order."""
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[-1] != self.experts.d_model:
            raise ValueError(f"x must have shape (*, {self.experts.d_model}) "
                             f"(got {tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__})")
        ids = None
        if token_ids is not None:
            if not isinstance(token_ids, torch.Tensor) or token_ids.shape != x.shape[:-1]:
                raise ValueError(f"token_ids must have shape {tuple(x.shape[:-1])}")
            ids = token_ids.reshape(-1)
        return self.router(x.reshape(-1, x.shape[-1]), token_ids=ids, generator=generator)

    def forward(self, x: torch.Tensor, *, token_ids: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> BlockOutput:
        """``BlockOutput(out (*, C), aux)`` for ``x (*, C)``: the N tokens routed together,
        ``aux[name] = aux_weights[name] * LOSSES[name](routing)``. ``generator`` draws the
        router noise (noisy top-k in training mode); ``token_ids (*)`` feed a hash router."""
        routing = self.route(x, token_ids=token_ids, generator=generator)
        aux = {name: w * LOSSES[name](routing) for name, w in self.aux_weights.items()}
        return BlockOutput(self.mix(x, routing), aux)

    def mix(self, x: torch.Tensor, routing: Routing) -> torch.Tensor:
        """``(*, C)``: the experts' output for ``x (*, C)`` under a given ``routing`` of its
        ``N`` tokens (the second half of :meth:`forward`, without the auxiliary losses)."""
        x2 = x.reshape(-1, x.shape[-1])                                      # (N, C)
        capacity = None
        if self.impl == "padded":
            capacity = getattr(self.router, "capacity", lambda n: None)(x2.shape[0])
        y = self.experts(x2, routing, impl=self.impl, capacity=capacity)     # (N, C)
        return self.dropout(y).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"impl={self.impl!r}, aux_weights={self.aux_weights}"


def moe_ffn(config: MoEConfig, *, layers: Collection[int] | None = None,
            generator: torch.Generator | None = None) -> Callable[[TinyGPTConfig, int], nn.Module]:
    """A TinyGPT ``ffn`` factory: an :class:`MoEFFN` in the blocks listed in ``layers`` (all
    when None), TinyGPT's dense ``FeedForward`` elsewhere.

    Each MoE layer gets ``d_model = n_embd``, ``d_hidden = config.d_hidden or d_ff`` (so
    with ``k = 1`` a token costs what a dense FFN costs), and the model's ``bias`` and ``dropout``.

    Example::

        model = TinyGPT(cfg, ffn=moe_ffn(MoEConfig(8, k=2, aux_weights=SHAZEER_AUX_WEIGHTS)))
    """
    if not isinstance(config, MoEConfig):
        raise TypeError(f"config must be a MoEConfig (got {type(config).__name__})")
    chosen = None if layers is None else {checks.integer(i, "layer", lo=0) for i in layers}
    checks.generator(generator)

    def factory(model_config: TinyGPTConfig, layer_index: int) -> nn.Module:
        if chosen is not None and layer_index not in chosen:
            return FeedForward(model_config, layer_index)
        return MoEFFN.from_config(config, model_config.n_embd, model_config.d_ff, bias=model_config.bias,
                                  dropout=model_config.dropout, generator=generator)
    return factory


def upcycle(ffn: nn.Module, router: nn.Module, *, impl: str = "grouped",
            aux_weights: Mapping[str, float] | None = None) -> MoEFFN:
    """Sparse upcycling of one dense FFN (komatsuzaki2023sparse): every expert a copy of it.

    Args:
        ffn: a dense GELU FFN with ``c_fc`` ``(C -> H)`` and ``c_proj`` ``(H -> C)``
            ``nn.Linear`` layers (TinyGPT's :class:`~sparsity_core.models.FeedForward`); its
            ``dropout`` probability, if any, is kept.
        router: the new router (its E experts are made); for an unchanged output at surgery,
            one whose weights sum to 1 per token with nothing dropped (see the module docstring).
        impl, aux_weights: as :class:`MoEFFN`.

    Returns:
        A new :class:`MoEFFN`; ``ffn`` is not modified.
    """
    fc, proj = getattr(ffn, "c_fc", None), getattr(ffn, "c_proj", None)
    if not isinstance(fc, nn.Linear) or not isinstance(proj, nn.Linear):
        raise TypeError("ffn must have nn.Linear layers c_fc (C -> H) and c_proj (H -> C)")
    C, H = fc.in_features, fc.out_features
    if (proj.in_features, proj.out_features) != (H, C) or (fc.bias is None) != (proj.bias is None):
        raise ValueError("c_proj must map H -> C and both layers must have a bias or neither")
    act = getattr(ffn, "gelu", None)
    if act is not None and not (isinstance(act, nn.GELU) and act.approximate == "none"):
        raise ValueError("ffn's activation must be the exact nn.GELU(), as the experts'")
    E = checks.positive_int(getattr(router, "num_experts", None), "router.num_experts")
    with torch.no_grad():
        experts = Experts.from_weights(
            fc.weight.t().expand(E, C, H), None if fc.bias is None else fc.bias.expand(E, H),
            proj.weight.t().expand(E, H, C), None if proj.bias is None else proj.bias.expand(E, C))
    router.to(device=fc.weight.device, dtype=fc.weight.dtype)
    drop = getattr(ffn, "dropout", None)
    p = drop.p if isinstance(drop, nn.Dropout) else 0.0
    return MoEFFN(router, experts, impl=impl, aux_weights=aux_weights, dropout=p)


def upcycle_tinygpt(model: TinyGPT, make_router: Callable[[int], nn.Module], *,
                    layers: Collection[int] | None = None, impl: str = "grouped",
                    aux_weights: Mapping[str, float] | None = None) -> TinyGPT:
    """A copy of ``model`` whose FFNs in ``layers`` (all when None) are upcycled.

    Args:
        model: a trained :class:`~sparsity_core.models.TinyGPT` with dense FFNs there; unchanged.
        make_router: ``layer_index -> router`` (a fresh router per layer).
        layers, impl, aux_weights: which blocks; as :func:`upcycle`.
    """
    if not isinstance(model, TinyGPT):
        raise TypeError(f"model must be a TinyGPT (got {type(model).__name__})")
    if not callable(make_router):
        raise TypeError("make_router must be a callable layer_index -> router")
    n = len(model.blocks)
    chosen = range(n) if layers is None else sorted({checks.integer(i, "layer", lo=0, hi=n - 1) for i in layers})
    new = copy.deepcopy(model)
    for i in chosen:
        new.blocks[i].mlp = upcycle(new.blocks[i].mlp, make_router(i), impl=impl, aux_weights=aux_weights)
    return new
