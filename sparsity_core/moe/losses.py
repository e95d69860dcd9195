"""Balancing losses: pure functions of a :class:`~sparsity_core.moe.routing.Routing`.

Each returns an *unweighted* scalar; :class:`~sparsity_core.moe.layer.MoEFFN` multiplies it
by its coefficient (the presets below carry the papers' values) and reports it by name.

* Importance (shazeer2017outrageously Eqs. 6-7): :math:`\\mathrm{Importance}(X) = \\sum_{x}
  G(x)`, loss :math:`\\mathrm{CV}(\\mathrm{Importance}(X))^2`.
* Load (shazeer2017outrageously App. A, Eqs. 8-10): the smooth number of tokens each expert
  receives, :math:`P(x, i) = \\Phi\\big(((x W_g)_i - \\mathrm{kth\\_excluding}(H(x), k, i)) /
  \\mathrm{Softplus}((x W_{noise})_i)\\big)`, the probability that expert ``i`` stays in the
  top ``k`` when only its own noise is redrawn; :math:`\\mathrm{Load}(X)_i = \\sum_x P(x, i)`,
  loss :math:`\\mathrm{CV}(\\mathrm{Load}(X))^2`.
* Switch (fedus2022switch Eqs. 4-6): :math:`E \\sum_i f_i P_i`, with :math:`f_i` the fraction
  of chosen slots sent to expert ``i`` (the router's choice, kept or dropped by capacity: the
  paper's :math:`1\\{\\arg\\max p(x) = i\\}`) and :math:`P_i` the mean router probability. It is
  1 for uniform routing and E when every token goes to one expert with probability 1; the
  paper's loss is :math:`\\alpha` times this (our E is the paper's N).
* Router z-loss (zoph2022stmoe Sec. 3.1): :math:`\\frac1N \\sum_x (\\log \\sum_j e^{(x W_g)_j})^2`.

CV is the population coefficient of variation, ``std / mean``, with tensor2tensor's
``cv_squared`` guard :data:`CV_EPS` and 0 for a single expert.

Taught in: Chapter 5, "Mixture-of-experts".
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Mapping

import torch

from .routing import Routing

__all__ = ["CV_EPS", "SHAZEER_W_IMPORTANCE", "SHAZEER_W_LOAD", "SWITCH_ALPHA", "ST_MOE_Z_COEF",
           "SHAZEER_AUX_WEIGHTS", "SWITCH_AUX_WEIGHTS", "cv_squared", "importance", "importance_loss",
           "load_probabilities", "smooth_load", "load_loss", "switch_loss", "z_loss", "LOSSES"]

#: Added to mean^2 in CV^2 (tensor2tensor ``cv_squared``), so an all-zero vector gives 0.
CV_EPS = 1e-10
#: w_importance and w_load of the main experiments (shazeer2017outrageously App. C).
SHAZEER_W_IMPORTANCE = 0.1
SHAZEER_W_LOAD = 0.1
#: alpha of the Switch load-balancing loss, from a sweep over 1e-1 ... 1e-5 (fedus2022switch Sec. 2.2).
SWITCH_ALPHA = 1e-2
#: c_z, the router z-loss coefficient (zoph2022stmoe Sec. 3.1).
ST_MOE_Z_COEF = 1e-3


def cv_squared(values: torch.Tensor) -> torch.Tensor:
    """:math:`\\mathrm{Var}(v) / (\\mathrm{mean}(v)^2 + \\epsilon)`, population variance;
    0 for one value. ``values`` ``(E,)`` -> scalar."""
    if not isinstance(values, torch.Tensor) or values.dim() != 1 or values.numel() == 0:
        raise ValueError("values must be a non-empty 1-D tensor (E,)")
    if values.numel() == 1:
        return values.sum() * 0
    return values.var(unbiased=False) / (values.mean() ** 2 + CV_EPS)


def importance(routing: Routing) -> torch.Tensor:
    """``(E,)`` :math:`\\sum_x G(x)`, the gate mass each expert receives."""
    return routing.gates().sum(dim=0)


def importance_loss(routing: Routing) -> torch.Tensor:
    """:math:`\\mathrm{CV}(\\mathrm{Importance}(X))^2` (shazeer2017outrageously Eq. 7, unweighted)."""
    return cv_squared(importance(routing))


def load_probabilities(routing: Routing) -> torch.Tensor:
    """``(N, E)`` :math:`P(x, i)` of shazeer2017outrageously Eqs. 8-9.

    The threshold for expert ``i`` is the k-th largest noisy logit of the *other* experts:
    the (k+1)-th largest of :math:`H(x)` when ``i`` is among the chosen, the k-th largest
    otherwise. With ``k = E`` every expert is always chosen and :math:`P = 1`.
    Differentiable in the clean logits, the noise scale and (through the thresholds) the
    noisy logits.

    Raises:
        ValueError: the routing has no noise (``noisy_logits`` / ``noise_std`` is None).
    """
    if routing.logits is None or routing.noisy_logits is None or routing.noise_std is None:
        raise ValueError("the load estimate needs a noisy router's output (logits, noisy_logits, "
                         "noise_std): use NoisyTopKRouter with noisy=True")
    k, clean, noisy = routing.k, routing.logits, routing.noisy_logits
    if k >= routing.num_experts:
        return torch.ones_like(clean)
    top = noisy.topk(k + 1, dim=1).values                                    # (N, k+1)
    chosen = torch.zeros_like(clean, dtype=torch.bool).scatter_(1, routing.experts, True)
    threshold = torch.where(chosen, top[:, k:k + 1], top[:, k - 1:k])        # (N, E)
    return torch.special.ndtr((clean - threshold) / routing.noise_std)


def smooth_load(routing: Routing) -> torch.Tensor:
    """``(E,)`` :math:`\\mathrm{Load}(X)_i = \\sum_x P(x, i)` (shazeer2017outrageously Eq. 10)."""
    return load_probabilities(routing).sum(dim=0)


def load_loss(routing: Routing) -> torch.Tensor:
    """:math:`\\mathrm{CV}(\\mathrm{Load}(X))^2` (shazeer2017outrageously Eq. 11, unweighted)."""
    return cv_squared(smooth_load(routing))


def switch_loss(routing: Routing) -> torch.Tensor:
    """:math:`E \\sum_i f_i P_i` (fedus2022switch Eq. 4 without alpha); 1 when uniform, E at collapse."""
    chosen = routing.kept | routing.dropped
    counts = torch.bincount(routing.experts[chosen], minlength=routing.num_experts)
    f = counts.to(routing.weights.dtype) / max(int(chosen.sum()), 1)        # (E,), no gradient
    P = routing.probs().mean(dim=0)                                          # (E,)
    return routing.num_experts * (f * P).sum()


def z_loss(routing: Routing) -> torch.Tensor:
    """Mean of :math:`\\mathrm{logsumexp}(x W_g)^2` over tokens (zoph2022stmoe Sec. 3.1, the router z-loss)."""
    if routing.logits is None:
        raise ValueError("the z-loss needs router logits (hash routing has none)")
    return (torch.logsumexp(routing.logits, dim=1) ** 2).mean()


#: The losses by the name :class:`~sparsity_core.moe.layer.MoEFFN` reports them under.
LOSSES: Mapping[str, Callable[[Routing], torch.Tensor]] = MappingProxyType({
    "importance_loss": importance_loss, "load_loss": load_loss,
    "switch_loss": switch_loss, "z_loss": z_loss,
})
#: Shazeer et al.'s balancing (App. C): w_importance = w_load = 0.1.
SHAZEER_AUX_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"importance_loss": SHAZEER_W_IMPORTANCE, "load_loss": SHAZEER_W_LOAD})
#: Switch's balancing: alpha = 1e-2.
SWITCH_AUX_WEIGHTS: Mapping[str, float] = MappingProxyType({"switch_loss": SWITCH_ALPHA})
