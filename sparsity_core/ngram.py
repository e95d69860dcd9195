r"""Count-based language-model baselines: an add-one unigram and an interpolated Kneser-Ney bigram.

A neural language model is only worth its perplexity if it beats what counting gets from the
same training tokens. Both baselines here are fit on a token stream and score another one with
the same tokenizer, over exactly the positions :func:`sparsity_core.pretrained.perplexity`
scores (position 0 of every block has no context and is not scored).

**Unigram** (Laplace): :math:`P(w) = (c(w) + 1) / (N + V)` for ``N`` training tokens and a
vocabulary of ``V`` ids.

**Bigram, interpolated Kneser-Ney** (Chen & Goodman 1999, Sec. 2.7 and Eq. 17, the interpolated
form; Kneser & Ney 1995 for the continuation counts), with one absolute discount ``D``:

.. math::

    P(w \mid v) = \frac{\max(c(v w) - D, 0)}{c(v)} + \frac{D\, N_{1+}(v \bullet)}{c(v)}\,
    P_\text{cont}(w), \qquad
    P_\text{cont}(w) = \frac{\max(N_{1+}(\bullet w) - D, 0)}{N_{1+}(\bullet\bullet)}
    + \frac{D\, T}{N_{1+}(\bullet\bullet)}\,\frac{1}{V},

where :math:`c(v)` counts ``v`` as a context, :math:`N_{1+}(v \bullet)` the distinct words
after ``v``, :math:`N_{1+}(\bullet w)` the distinct words before ``w``,
:math:`N_{1+}(\bullet\bullet)` the distinct bigrams and ``T`` the distinct continuations. The
lowest order interpolates with the uniform distribution, so every id has a positive
probability; a context never seen in training falls back to :math:`P_\text{cont}`. The
discount is Ney et al.'s estimate :math:`D = n_1 / (n_1 + 2 n_2)` from the numbers of bigram
types seen once and twice (Chen & Goodman's Eq. 16 with their single-``D`` model).

Reference implementation read: NLTK's ``nltk.lm.KneserNeyInterpolated`` (not copied). It differs
at the lowest order: its continuation probability is undiscounted and has no uniform floor, so
an id never seen as a continuation gets probability 0 there, and a held-out text holding one
has infinite perplexity. Every conditional distribution here sums to 1 (tested to 1e-12).

Taught in: Chapter 0, "The bench" (the baselines TinyGPT and SmolLM2 must beat).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import checks

__all__ = ["UnigramLM", "KneserNeyBigramLM", "scored_positions"]


def _ids(token_ids: object, vocab_size: int, name: str, *, any_shape: bool = False) -> np.ndarray:
    arr = np.asarray(token_ids.detach().cpu() if hasattr(token_ids, "detach") else token_ids)
    if (arr.ndim != 1 and not any_shape) or arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a {'' if any_shape else '1-D '}integer array "
                         f"(got shape {arr.shape}, dtype {arr.dtype})")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(f"{name} must hold ids in [0, {vocab_size}) (got {arr.min()}..{arr.max()})")
    return arr.astype(np.int64)


def scored_positions(n: int, block_size: int | None) -> np.ndarray:
    """Indices ``t >= 1`` of an ``n``-token stream that a blockwise perplexity scores.

    ``block_size=None``: every ``t`` in ``1..n-1``. Otherwise the ``n // S`` full blocks of
    ``S = block_size`` tokens, positions 1..S-1 of each (as
    :func:`sparsity_core.pretrained.perplexity`). Each scored token is predicted from
    ``t - 1``, which lies in its block.
    """
    n = checks.integer(n, "n", lo=0)
    if block_size is None:
        return np.arange(1, n)
    S = checks.integer(block_size, "block_size", lo=2)
    starts = np.arange(n // S) * S
    return (starts[:, None] + np.arange(1, S)[None, :]).reshape(-1)


@dataclass(frozen=True)
class UnigramLM:
    """Add-one unigram over ``vocab_size`` ids; build with :meth:`fit`."""
    vocab_size: int
    counts: np.ndarray          # (V,) training counts

    @classmethod
    def fit(cls, token_ids: object, vocab_size: int) -> UnigramLM:
        """Count ``token_ids`` ((N,) ints in ``[0, V)``, N >= 1)."""
        V = checks.positive_int(vocab_size, "vocab_size")
        ids = _ids(token_ids, V, "token_ids")
        if ids.size == 0:
            raise ValueError("token_ids must hold at least one token")
        return cls(V, np.bincount(ids, minlength=V).astype(np.float64))

    def prob(self, words: np.ndarray) -> np.ndarray:
        """``P(w)`` for an int array of ids in ``[0, V)`` (any shape); float64, same shape."""
        words = _ids(words, self.vocab_size, "words", any_shape=True)
        return (self.counts[words] + 1.0) / (self.counts.sum() + self.vocab_size)

    def perplexity(self, token_ids: object, *, block_size: int | None = None) -> float:
        """``exp(-mean log P(w_t))`` over :func:`scored_positions` of ``token_ids``."""
        ids = _ids(token_ids, self.vocab_size, "token_ids")
        t = scored_positions(ids.size, block_size)
        if t.size == 0:
            raise ValueError(f"{ids.size} tokens leave no position to score")
        return float(np.exp(-np.log(self.prob(ids[t])).mean()))


@dataclass(frozen=True)
class KneserNeyBigramLM:
    """Interpolated Kneser-Ney bigram (module docstring); build with :meth:`fit`."""
    vocab_size: int
    discount: float
    keys: np.ndarray            # (B,) sorted bigram keys v * V + w of the training bigrams
    key_counts: np.ndarray      # (B,) c(v w)
    context_counts: np.ndarray  # (V,) c(v): bigrams with v as context
    context_types: np.ndarray   # (V,) N1+(v .)
    continuation: np.ndarray    # (V,) P_cont(w), sums to 1

    @classmethod
    def fit(cls, token_ids: object, vocab_size: int) -> KneserNeyBigramLM:
        """Count the bigrams of ``token_ids`` ((N,) ints in ``[0, V)``).

        Raises:
            ValueError: no bigram type occurs once or twice, so the discount is undefined.
        """
        V = checks.positive_int(vocab_size, "vocab_size")
        ids = _ids(token_ids, V, "token_ids")
        keys, counts = np.unique(ids[:-1] * V + ids[1:], return_counts=True)
        n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
        if n1 + 2 * n2 == 0:
            raise ValueError("no bigram type occurs once or twice: too little (or too repetitive) "
                             "training text for the discount n1 / (n1 + 2 n2)")
        D = n1 / (n1 + 2 * n2)
        prev, nxt = keys // V, keys % V
        counts = counts.astype(np.float64)
        before = np.bincount(nxt, minlength=V).astype(np.float64)          # N1+(. w)
        n_types = float(keys.size)                                          # N1+(. .)
        seen = float((before > 0).sum())                                    # T
        continuation = np.maximum(before - D, 0.0) / n_types + D * seen / n_types / V
        return cls(V, D, keys, counts, np.bincount(prev, weights=counts, minlength=V),
                   np.bincount(prev, minlength=V).astype(np.float64), continuation)

    def prob(self, prev: np.ndarray, words: np.ndarray) -> np.ndarray:
        """``P(w | v)`` for equal-shape int arrays of contexts ``prev`` and ids ``words``, both in
        ``[0, V)``; float64, the same shape."""
        prev = _ids(prev, self.vocab_size, "prev", any_shape=True)
        words = _ids(words, self.vocab_size, "words", any_shape=True)
        if prev.shape != words.shape:
            raise ValueError(f"prev and words must have the same shape (got {prev.shape} and {words.shape})")
        key = prev * self.vocab_size + words
        at = np.minimum(np.searchsorted(self.keys, key), self.keys.size - 1)
        c_vw = np.where(self.keys[at] == key, self.key_counts[at], 0.0)
        c_v = self.context_counts[prev]
        p_cont = self.continuation[words]
        safe = np.maximum(c_v, 1.0)
        seen = (np.maximum(c_vw - self.discount, 0.0) / safe
                + self.discount * self.context_types[prev] / safe * p_cont)
        return np.where(c_v > 0, seen, p_cont)

    def perplexity(self, token_ids: object, *, block_size: int | None = None) -> float:
        """``exp(-mean log P(w_t | w_{t-1}))`` over :func:`scored_positions` of ``token_ids``."""
        ids = _ids(token_ids, self.vocab_size, "token_ids")
        t = scored_positions(ids.size, block_size)
        if t.size == 0:
            raise ValueError(f"{ids.size} tokens leave no position to score")
        return float(np.exp(-np.log(self.prob(ids[t - 1], ids[t])).mean()))
