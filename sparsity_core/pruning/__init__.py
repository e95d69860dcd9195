"""Pruning: a scoring-hook skeleton, magnitude/random pruning, gradual pruning (AGP),
iterative magnitude pruning with rewinding, and sparse model soups.

Taught in: Chapter 2, "Pruning I"; the skeleton is reused by later pruning chapters.
"""
from .base import GradualPruner, Pruner
from .imp import IMPRound, imp_density, imp_rounds, iterative_magnitude_pruning, rewind, snapshot
from .magnitude import MagnitudePruner, RandomPruner
from .soups import sparse_soup

__all__ = [
    "Pruner", "GradualPruner", "MagnitudePruner", "RandomPruner",
    "snapshot", "rewind", "imp_density", "imp_rounds", "IMPRound", "iterative_magnitude_pruning",
    "sparse_soup",
]
