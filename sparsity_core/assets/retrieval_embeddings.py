"""MiniLM embeddings of the Python-docs documents:
``python -m sparsity_core.assets build retrieval-embeddings``.

Encoding all 8,205 documents with all-MiniLM-L6-v2 (:cite:`wang2020minilm`,
:cite:`reimers2019sentence`) takes minutes on 2 cores, too long for a chapter run, so the
document side of the dense baseline is built once, stored in fp16
(``data/retrieval/pydocs/minilm_docs.safetensors``) and checked by checksum. Chapters encode
the queries in their own run and re-encode a random sample of documents to confirm that
the stored vectors are what the model gives. The loader is
:func:`sparsity_core.data.retrieval.load_doc_embeddings`; this module only builds.
"""
from __future__ import annotations

import argparse
import time

import torch
from safetensors.torch import save_file

from ..data.retrieval import doc_embeddings_path, load_pydocs
from . import manifest

COMMAND = "python -m sparsity_core.assets build retrieval-embeddings"
#: fp16 keeps 3 significant digits: cosines of unit vectors change by < 1e-3.
STORE_DTYPE = torch.float16


def encode_sorted(texts: list[str], model, tokenizer, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """:func:`~sparsity_core.pretrained.encode` in order of length (less padding), rows unsorted back."""
    from ..pretrained import encode

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    emb = encode([texts[i] for i in order], model, tokenizer, batch_size=batch_size, progress=progress)
    out = torch.empty_like(emb)
    out[torch.tensor(order)] = emb
    return out


def main(argv: list[str] | None = None) -> int:
    """Encode every benchmark document with MiniLM, save fp16, record the checksum."""
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    ap.parse_args(argv)
    from ..pretrained import load_minilm

    bench = load_pydocs()
    model, tokenizer = load_minilm()
    torch.set_num_threads(2)
    start = time.perf_counter()
    emb = encode_sorted(bench.docs, model, tokenizer)
    path = doc_embeddings_path()
    save_file({"embeddings": emb.to(STORE_DTYPE).contiguous()}, str(path),
              metadata={"model": "all-MiniLM-L6-v2", "documents": str(len(bench.docs))})
    manifest.record([path], COMMAND)
    print(f"encoded {len(bench.docs)} documents in {time.perf_counter() - start:.0f} s -> {path}")
    return 0
