"""Sparse distributed representations: exact combinatorics, Monte-Carlo twins, fast overlaps.

Dimension letters (used throughout the subpackage):
    n      population / vector size
    w, a   ON bits of an SDR (w in Ahmad & Hawkins 2015, a "active cells" in the 2016 papers)
    s      synapses on a dendritic segment
    theta  match / NMDA-spike threshold
    M      number of stored (or OR-ed) patterns
    B      batch: number of SDRs in a set or of Monte-Carlo trials in a chunk

Modules:
    exact     closed forms E1-E9' with ``math.comb`` and ``Fraction``
    simulate  vectorised Monte-Carlo estimators with an explicit ``torch.Generator``
    curse     the index-size curse of dense low-dimensional retrieval
    overlap   all-pairs overlaps: popcount, scipy sparse, dense matmul

Taught in: Chapter 1, "SDR theory".
"""

from .curse import distractor_win_probability, simulate_distractor_win, simulate_distractor_win_vectors
from .exact import (
    capacity,
    detection_probability,
    false_match_probability,
    identical_probability,
    overlap_set_size,
    segment_false_match,
    segment_union_false_match,
    set_false_positive,
    set_false_positive_union_bound,
    union_bit_zero_probability,
    union_expected_size,
    union_match_probability,
)
from .overlap import indices_to_dense, overlap_dense, overlap_popcount, overlap_sparse, pack_bits
from .simulate import (
    MonteCarlo,
    se_band,
    mc_false_match,
    mc_noise_detection,
    mc_segment_false_match,
    mc_segment_union_false_match,
    mc_set_false_positive,
    random_sdr_indices,
    random_sdrs,
    union_sizes,
)

__all__ = [
    "capacity",
    "identical_probability",
    "overlap_set_size",
    "false_match_probability",
    "segment_false_match",
    "set_false_positive",
    "set_false_positive_union_bound",
    "union_bit_zero_probability",
    "union_expected_size",
    "union_match_probability",
    "segment_union_false_match",
    "detection_probability",
    "MonteCarlo",
    "se_band",
    "random_sdr_indices",
    "random_sdrs",
    "mc_false_match",
    "mc_set_false_positive",
    "mc_segment_false_match",
    "mc_segment_union_false_match",
    "mc_noise_detection",
    "union_sizes",
    "distractor_win_probability",
    "simulate_distractor_win",
    "simulate_distractor_win_vectors",
    "pack_bits",
    "overlap_popcount",
    "overlap_sparse",
    "overlap_dense",
    "indices_to_dense",
]
