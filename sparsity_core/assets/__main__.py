"""python -m sparsity_core.assets build <name> [...]: rebuild a committed asset.

Names: tokenizer (the Shakespeare BPE tokenizer), retrieval (the Python-docs known-item
benchmark; needs Debian's python3.11-doc at build time only), retrieval-embeddings (MiniLM
vectors of its documents), tinygpt (both TinyGPT sizes).
Each builder writes its files under data/ and records them in data/MANIFEST.
"""
from __future__ import annotations

import argparse
import importlib
import sys

BUILDERS = {  # name -> module with a main(argv) -> int
    "tokenizer": "sparsity_core.assets.tokenizer",
    "retrieval": "sparsity_core.assets.retrieval",
    "retrieval-embeddings": "sparsity_core.assets.retrieval_embeddings",
    "tinygpt": "sparsity_core.assets.tinygpt",
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``build <name> [...]`` or ``verify`` and run it; returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m sparsity_core.assets", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="verb", required=True)
    build = sub.add_parser("build", help="rebuild an asset")
    build.add_argument("name", choices=sorted(BUILDERS))
    build.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the builder")
    sub.add_parser("verify", help="check every file in data/MANIFEST")
    args = ap.parse_args(argv)
    if args.verb == "verify":
        from ..artifacts import manifest_path, read_manifest, verify

        entries = read_manifest()
        for rel in entries:
            verify(manifest_path().parent / rel)
        print(f"{len(entries)} assets match data/MANIFEST")
        return 0
    return importlib.import_module(BUILDERS[args.name]).main(args.rest)


if __name__ == "__main__":
    sys.exit(main())
