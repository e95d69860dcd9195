"""Pruning: a scoring-hook skeleton, magnitude/random pruning, gradual pruning (AGP),
iterative magnitude pruning with rewinding, and sparse model soups (Chapter 2, "Pruning I");
one-shot pruning of pretrained transformers with Wanda, SparseGPT and DSnoT, block by block
(Chapter 3, "Pruning II").
"""
from .base import GradualPruner, Pruner
from .dsnot import dsnot_mask
from .imp import IMPRound, imp_density, imp_rounds, iterative_magnitude_pruning, rewind, snapshot
from .magnitude import MagnitudePruner, RandomPruner
from .sequential import METHODS, LayerRecord, prune_sequential
from .soups import sparse_soup
from .sparsegpt import SparseGPTResult, dampened_hessian, sparsegpt_prune
from .wanda import WandaPruner, wanda_mask, wanda_scores

__all__ = [
    "Pruner", "GradualPruner", "MagnitudePruner", "RandomPruner",
    "snapshot", "rewind", "imp_density", "imp_rounds", "IMPRound", "iterative_magnitude_pruning",
    "sparse_soup",
    "wanda_scores", "wanda_mask", "WandaPruner",
    "sparsegpt_prune", "dampened_hessian", "SparseGPTResult", "dsnot_mask",
    "prune_sequential", "LayerRecord", "METHODS",
]
