"""Write ``data/MANIFEST``: the builders record each committed file's sha256 and rebuild command.

The format, and the reading and checking side that loaders use, are in
:mod:`sparsity_core.artifacts`.
"""
from __future__ import annotations

from pathlib import Path

from ..artifacts import Entry, manifest_path, read_manifest, sha256_file

__all__ = ["record"]

_HEADER = ("# sha256  path (relative to data/)  command that rebuilds it\n"
           "# Written by the builders of sparsity_core.assets; do not edit by hand.\n")


def record(files: list[Path], command: str, path: Path | None = None) -> None:
    """Add or update the entries of ``files`` (under ``data/``) with their sha256 and ``command``."""
    path = path or manifest_path()
    entries = read_manifest(path)
    root = path.parent
    for f in files:
        rel = Path(f).resolve().relative_to(root.resolve()).as_posix()
        entries[rel] = Entry(sha256_file(Path(f)), rel, command)
    lines = [f"{e.sha256}  {e.path}  {e.command}" for e in sorted(entries.values(), key=lambda e: e.path)]
    path.write_text(_HEADER + "\n".join(lines) + "\n", encoding="utf-8")
