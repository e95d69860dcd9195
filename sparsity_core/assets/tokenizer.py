"""Build ``data/tokenizers/shakespeare_bpe.json``: byte-level BPE on the Shakespeare train split.

Run as ``python -m sparsity_core.assets build tokenizer``. Only the train split of
:func:`sparsity_core.data.text.text_splits` is seen, so validation and test perplexities
are measured on text the tokenizer never saw. Training is deterministic (exact pair counts,
ties broken by the pair), so a rebuild gives the same bytes and the same manifest line;
the builder checks this by training twice unless ``--once`` is given.
"""
from __future__ import annotations

import argparse

from .. import artifacts
from ..data.text import BPE_VOCAB_SIZE, BPETokenizer, bpe_tokenizer_path, text_splits
from . import manifest

COMMAND = "python -m sparsity_core.assets build tokenizer"


def main(argv: list[str] | None = None) -> int:
    """Train the Shakespeare BPE tokenizer, save it under data/tokenizers and record it; returns the exit status."""
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--once", action="store_true",
                    help="train once (skip the check that a second training gives the same file)")
    args = ap.parse_args(argv)

    train = text_splits("shakespeare").train
    tokenizer = BPETokenizer.train(train, vocab_size=BPE_VOCAB_SIZE)
    if not args.once:
        again = BPETokenizer.train(train, vocab_size=BPE_VOCAB_SIZE)
        if again.tokenizer.to_str(pretty=True) != tokenizer.tokenizer.to_str(pretty=True):
            print("error: two trainings on the same text gave different tokenizers")
            return 1
    path = tokenizer.save(bpe_tokenizer_path("shakespeare"))
    manifest.record([path], COMMAND)
    print(f"wrote {path} (vocab_size={tokenizer.vocab_size}, "
          f"sha256 {artifacts.sha256_file(path)[:16]}..., trained on {len(train):,} chars)")
    return 0
