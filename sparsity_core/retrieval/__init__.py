"""Retrieval (Chapter 7): tokenization, BM25 with an eager sparse index, ranking metrics.

Benchmarks live in :mod:`sparsity_core.data.retrieval`.
"""
from .bm25 import BM25, METHODS, STOPWORDS_EN, idf, tf_component, tokenize, topk
from .metrics import mrr_at_k, ranks, recall_at_k

__all__ = ["BM25", "METHODS", "STOPWORDS_EN", "idf", "tf_component", "tokenize", "topk",
           "mrr_at_k", "ranks", "recall_at_k"]
