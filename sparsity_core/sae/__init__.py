"""Sparse autoencoders (Chapter 7): the SAE variants, their activations and metrics, the toy
model of superposition, synthetic data with known features, and a trainer.
"""
from .activations import batch_topk, heaviside_step, jumprelu, topk_relu
from .data import (HierarchyData, hierarchy_data, normalise, random_directions, residual_stream,
                   superposition_data, zipf_probabilities)
from .metrics import (absorption_rate, cosine_matrix, dead_fraction, frontier_at, fvu, l0, latent_frequencies,
                      mmcs, shrinkage)
from .base import SAE, SAEOutput, geometric_median, squared_error
from .model import SAE_KINDS, make_sae
from .penalty import GatedSAE, JumpReLUSAE, ReLUSAE
from .topk import BatchTopKSAE, MatryoshkaSAE, TopKSAE
from .toy import ToyModel, ToyModels, features_represented, superposition, train_toy_models
from .train import encode_all, evaluate_sae, sae_step_loss, shuffled_batches, train_sae

__all__ = [
    "topk_relu", "batch_topk", "jumprelu", "heaviside_step",
    "SAE", "ReLUSAE", "TopKSAE", "BatchTopKSAE", "MatryoshkaSAE", "JumpReLUSAE", "GatedSAE", "make_sae",
    "SAE_KINDS", "SAEOutput", "geometric_median", "squared_error",
    "frontier_at", "fvu", "l0", "latent_frequencies", "dead_fraction", "shrinkage", "mmcs", "cosine_matrix", "absorption_rate",
    "superposition_data", "zipf_probabilities", "hierarchy_data", "HierarchyData", "normalise", "random_directions", "residual_stream",
    "ToyModel", "ToyModels", "train_toy_models", "features_represented", "superposition",
    "shuffled_batches", "train_sae", "sae_step_loss", "evaluate_sae", "encode_all",
]
