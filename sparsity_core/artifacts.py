"""Committed artifacts: where they live under ``data/`` and their check against ``data/MANIFEST``.

``data/MANIFEST`` holds the checksum and the rebuild command of every committed asset,
one line per file::

    <sha256>  <path relative to data/>  <command that rebuilds it>

Loaders (:mod:`sparsity_core.data`, :mod:`sparsity_core.pretrained`) call :func:`verify`
before reading an asset, so a corrupted or hand-edited file fails loudly instead of giving
different numbers. This module only reads the manifest; the builders of
:mod:`sparsity_core.assets` write it (:func:`sparsity_core.assets.manifest.record`).
Nothing here imports a builder, a data set or a model.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import paths

__all__ = ["MANIFEST_NAME", "ChecksumError", "Entry", "manifest_path", "sha256_file",
           "read_manifest", "verify", "tinygpt_checkpoint_path", "tinygpt_card_path"]

MANIFEST_NAME = "MANIFEST"


class ChecksumError(RuntimeError):
    """An asset's sha256 differs from the one in data/MANIFEST (or it is not listed)."""


@dataclass(frozen=True)
class Entry:
    """One manifest line: the file's sha256, its path under ``data/``, the command that rebuilds it."""

    sha256: str
    path: str
    command: str


def manifest_path() -> Path:
    """``data/MANIFEST``."""
    return paths.data_dir() / MANIFEST_NAME


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_manifest(path: Path | None = None) -> dict[str, Entry]:
    """All entries of ``data/MANIFEST``, keyed by relative path (empty if there is none)."""
    path = path or manifest_path()
    if not path.exists():
        return {}
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        sha, rel, command = line.split("  ", 2)
        entries[rel] = Entry(sha, rel, command)
    return entries


def verify(file: Path, path: Path | None = None) -> Path:
    """Check ``file`` (under ``data/``) against its manifest entry; return it if it matches.

    Raises:
        FileNotFoundError: the file is missing (the message says how to rebuild it).
        ChecksumError: the file is not listed, or its sha256 differs.
    """
    path = path or manifest_path()
    file = Path(file)
    rel = file.resolve().relative_to(path.parent.resolve()).as_posix()
    entry = read_manifest(path).get(rel)
    if entry is None:
        raise ChecksumError(f"{rel} is not listed in {path}")
    if not file.exists():
        raise FileNotFoundError(f"{rel} is missing; rebuild it with `{entry.command}`")
    actual = sha256_file(file)
    if actual != entry.sha256:
        raise ChecksumError(f"{rel}: sha256 {actual} differs from the manifest's {entry.sha256}; "
                            f"rebuild it with `{entry.command}`")
    return file


def tinygpt_checkpoint_path(size: str) -> Path:
    """``data/models/tinygpt_<size>.safetensors`` (fp16 weights, config in the metadata)."""
    return paths.data_dir() / "models" / f"tinygpt_{size}.safetensors"


def tinygpt_card_path(size: str) -> Path:
    """``data/models/tinygpt_<size>.json``: the training record and fp16 validation loss."""
    return paths.data_dir() / "models" / f"tinygpt_{size}.json"
