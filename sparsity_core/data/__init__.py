"""Offline data: image classification sets, text corpora, tokenizers and token batches.

Everything is read from installed pip packages or from ``data/`` (checked against
``data/MANIFEST``); nothing is downloaded, nothing is loaded at import.

Dimension letters used across the subpackage:
    B batch, T tokens per block, C channels, L length (of a 1-D signal), D features,
    N examples (images) or tokens (a corpus), H / W image height / width.

Modules:
    images: :class:`ImageData`; :func:`load_digits` (8x8), :func:`load_mnist1d` (L=40),
        :func:`load_mnist` (28x28).
    text: :func:`load_shakespeare`, :func:`load_kjv`, :func:`text_splits`,
        :class:`CharTokenizer`, :class:`BPETokenizer`, :func:`load_bpe_tokenizer`,
        :func:`encode_corpus`, :func:`random_blocks`, :func:`sequential_blocks`,
        :func:`shuffled_words`.
    retrieval: the Python-docs known-item benchmark (:func:`load_pydocs`) and
        >= 100k distractor passages (:func:`load_distractors`).
"""
from .images import ImageData, load_digits, load_mnist, load_mnist1d, require_package
from .retrieval import Query, RetrievalBenchmark, load_distractors, load_doc_embeddings, load_pydocs
from .text import (
    BPE_VOCAB_SIZE,
    CORPORA,
    BPETokenizer,
    CharTokenizer,
    TextSplits,
    Tokenizer,
    encode_corpus,
    load_bpe_tokenizer,
    load_kjv,
    load_shakespeare,
    random_blocks,
    sequential_blocks,
    shuffled_words,
    split_text,
    text_splits,
)

__all__ = [
    "ImageData", "load_digits", "load_mnist", "load_mnist1d", "require_package",
    "BPE_VOCAB_SIZE", "CORPORA", "BPETokenizer", "CharTokenizer", "TextSplits", "Tokenizer",
    "encode_corpus", "load_bpe_tokenizer", "load_kjv", "load_shakespeare", "random_blocks",
    "sequential_blocks", "shuffled_words", "split_text", "text_splits",
    "Query", "RetrievalBenchmark", "load_distractors", "load_doc_embeddings", "load_pydocs",
]
