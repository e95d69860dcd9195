"""Sparse attention (Chapter 6): patterns as token and block masks, and the dense reference.

* :mod:`~sparsity_core.attention.patterns`: Sparse Transformers' strided and fixed patterns
  (child2019generating), BigBird's block pattern (zaheer2020big), A-shape and vertical-slash
  masks, block top-k selection, block/token conversions and the closed-form sizes.
* :mod:`~sparsity_core.attention.reference`: dense masked attention, the ground truth.
* :mod:`~sparsity_core.attention.estimators`: dynamic selection (top-k oracle, Loki's PCA
  scores, k-means routing) and Scatterbrain's sparse + low-rank estimate.
* :mod:`~sparsity_core.attention.nsa`: Native Sparse Attention (compression, selection, window,
  gates), a dense-mask reference with its identity cases tested, and a TinyGPT attention module.
* :mod:`~sparsity_core.attention.approximation`: the oracle sparse, low-rank and sparse +
  low-rank approximations of an attention matrix (chen2021scatterbrain's regimes).
* :mod:`~sparsity_core.attention.module`: a fixed pattern in TinyGPT's attention slot.
* :mod:`~sparsity_core.attention.block_sparse`: the same attention computed only on the kept
  (query block, key block) tiles: a plain-PyTorch block gather, and FlexAttention.

Shapes: ``(n, n)`` bool masks, True = query ``i`` attends to key ``j``.
"""
from .patterns import (topk_mask, a_shape_count, a_shape_mask, bigbird_block_count, bigbird_block_mask, block_topk_mask,
                       blocks_of, causal_mask, density, diameter, expand_blocks, fixed_count, fixed_heads, fixed_mask,
                       hop_distance, local_mask, strided_count, strided_heads, strided_mask, two_hop_reachable,
                       vertical_slash_mask)
from .block_sparse import (BlockLayout, block_gather_attention, block_index, block_layout, flex_block_attention,
                           flex_block_mask)
from .approximation import (low_rank_approximation, relative_output_error, row_entropy, sparse_approximation,
                            sparse_plus_low_rank)
from .estimators import (kmeans_routing_mask, loki_mask, lsh_buckets, lsh_mask, pca_basis, positive_random_features, recall,
                         scatterbrain_attention, topk_attention)
from .nsa import NSAAttention, NSAConfig, compress, compression_starts, nsa_attention, nsa_attention_sdpa, selection_mask
from .module import PatternAttention, pattern_attention
from .reference import masked_attention, masked_softmax

__all__ = ["causal_mask", "local_mask", "strided_heads", "strided_mask", "fixed_heads", "fixed_mask",
           "strided_count", "fixed_count", "two_hop_reachable", "bigbird_block_mask", "bigbird_block_count",
           "a_shape_mask", "a_shape_count", "vertical_slash_mask", "block_topk_mask", "expand_blocks",
           "blocks_of", "density", "diameter", "hop_distance", "masked_attention", "masked_softmax", "block_index", "BlockLayout", "block_layout", "block_gather_attention",
           "flex_block_mask", "flex_block_attention", "topk_mask", "topk_attention", "pca_basis", "loki_mask",
           "recall", "positive_random_features", "scatterbrain_attention", "kmeans_routing_mask", "NSAConfig",
           "NSAAttention", "nsa_attention", "nsa_attention_sdpa", "selection_mask", "compress", "compression_starts", "lsh_buckets",
           "lsh_mask", "sparse_approximation", "low_rank_approximation", "sparse_plus_low_rank",
           "relative_output_error", "row_entropy", "PatternAttention", "pattern_attention"]
