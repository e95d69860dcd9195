"""Mixture-of-experts (Chapter 5): routers, balancing losses, experts, the MoE FFN, upcycling.

* :mod:`~sparsity_core.moe.routing`: :class:`Routing`, what every router returns, and the
  capacity arithmetic (GShard / Switch).
* :mod:`~sparsity_core.moe.routers`: noisy top-k (shazeer2017outrageously), softmax top-k and
  Switch with capacity (fedus2022switch), expert choice (zhou2022mixture).
* :mod:`~sparsity_core.moe.hashing`: random and balanced hash routing (roller2021hash).
* :mod:`~sparsity_core.moe.losses`: importance and load CV^2, the Switch loss, the router z-loss.
* :mod:`~sparsity_core.moe.experts`: stacked GELU experts and three equal implementations
  (per-token loop, sorted grouped as ScatterMoE, capacity-padded).
* :mod:`~sparsity_core.moe.layer`: :class:`MoEFFN` for TinyGPT's FFN slot, :class:`MoEConfig`,
  and sparse upcycling (komatsuzaki2023sparse).

Dimension letters: N tokens routed together, C width, H expert hidden width, E experts,
K slots per token.
"""
from .experts import IMPLEMENTATIONS, Experts, expert_mlp, grouped_experts, loop_experts, padded_experts, padded_slot_count
from .hashing import HashRouter, balanced_hash_table, random_hash_table
from .layer import ROUTER_KINDS, MoEConfig, MoEFFN, build_router, moe_ffn, upcycle, upcycle_tinygpt
from .losses import (CV_EPS, LOSSES, SHAZEER_AUX_WEIGHTS, SHAZEER_W_IMPORTANCE, SHAZEER_W_LOAD, ST_MOE_Z_COEF,
                     SWITCH_ALPHA, SWITCH_AUX_WEIGHTS, cv_squared, importance, importance_loss, load_loss,
                     load_probabilities, smooth_load, switch_loss, z_loss)
from .routers import (EXPERT_CHOICE_CAPACITY_FACTOR, MIN_NOISE_STD, SWITCH_CAPACITY_FACTOR, SWITCH_INIT_SCALE,
                      ExpertChoiceRouter, NoisyTopKRouter, SwitchRouter, TopKRouter)
from .routing import (Routing, apply_capacity, dropped_fraction, expert_capacity, expert_counts, slot_positions,
                      unrouted_fraction)

__all__ = [
    "Routing", "expert_capacity", "slot_positions", "apply_capacity", "expert_counts", "dropped_fraction",
    "unrouted_fraction",
    "NoisyTopKRouter", "TopKRouter", "SwitchRouter", "ExpertChoiceRouter",
    "MIN_NOISE_STD", "SWITCH_INIT_SCALE", "SWITCH_CAPACITY_FACTOR", "EXPERT_CHOICE_CAPACITY_FACTOR",
    "HashRouter", "random_hash_table", "balanced_hash_table",
    "cv_squared", "importance", "importance_loss", "load_probabilities", "smooth_load", "load_loss",
    "switch_loss", "z_loss", "LOSSES", "CV_EPS", "SHAZEER_W_IMPORTANCE", "SHAZEER_W_LOAD", "SWITCH_ALPHA",
    "ST_MOE_Z_COEF", "SHAZEER_AUX_WEIGHTS", "SWITCH_AUX_WEIGHTS",
    "Experts", "expert_mlp", "loop_experts", "grouped_experts", "padded_experts", "padded_slot_count",
    "IMPLEMENTATIONS",
    "MoEConfig", "MoEFFN", "ROUTER_KINDS", "build_router", "moe_ffn", "upcycle", "upcycle_tinygpt",
]
