"""Tests of sparsity_core.data: offline images, text corpora, tokenizers, batches."""
