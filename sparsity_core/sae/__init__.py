"""Sparse autoencoders (Chapter 7): the SAE variants, their activations and metrics, the toy
model of superposition, synthetic data with known features, and a trainer.
"""
from .activations import batch_topk, heaviside_step, jumprelu, topk_relu
from .data import (HierarchyData, hierarchy_data, normalise, random_directions, residual_stream,
                   superposition_data)
from .metrics import (absorption_rate, cosine_matrix, dead_fraction, frontier_at, fvu, l0, latent_frequencies,
                      mmcs, shrinkage)
from .model import (SAE, SAE_KINDS, BatchTopKSAE, GatedSAE, JumpReLUSAE, MatryoshkaSAE, ReLUSAE, TopKSAE,
                    geometric_median, make_sae)
from .toy import ToyModels, features_represented, superposition, train_toy_models
from .train import encode_all, evaluate_sae, shuffled_batches, train_sae

__all__ = [
    "topk_relu", "batch_topk", "jumprelu", "heaviside_step",
    "SAE", "ReLUSAE", "TopKSAE", "BatchTopKSAE", "MatryoshkaSAE", "JumpReLUSAE", "GatedSAE", "make_sae",
    "SAE_KINDS", "geometric_median",
    "frontier_at", "fvu", "l0", "latent_frequencies", "dead_fraction", "shrinkage", "mmcs", "cosine_matrix", "absorption_rate",
    "superposition_data", "hierarchy_data", "HierarchyData", "normalise", "random_directions", "residual_stream",
    "ToyModels", "train_toy_models", "features_represented", "superposition",
    "shuffled_batches", "train_sae", "evaluate_sae", "encode_all",
]
