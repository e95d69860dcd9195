r"""Perplexity of a causal language model over non-overlapping blocks of a token stream.

The stream of N tokens is cut into ``n = N // block_size`` blocks of ``block_size`` tokens
(the last ``N mod block_size`` tokens are dropped). In each block every token but the
first is predicted from the ones before it *in that block*:

.. math:: \mathrm{PPL} = \exp\Big(\frac{1}{n\,(S-1)} \sum_{b=1}^{n} \sum_{t=2}^{S}
          -\log p_\theta(x_{b,t} \mid x_{b,1}, \dots, x_{b,t-1})\Big), \qquad S = \text{block\_size}.

This is the evaluation of Wanda and SparseGPT (``eval_ppl``: non-overlapping blocks of the
model's context length, remainder dropped; their per-block mean loss times S, summed and
divided by n S, is the same mean over the n (S - 1) predictions). No sliding window: the
first tokens of each block see little context, so the result is higher than a strided
evaluation (the gap shrinks as S grows). The first token of each block, whatever it is (no
BOS is inserted), is context only.

Log-probabilities are computed in float64 (one sequence at a time) and the summed negative
log-likelihood is accumulated in float64, so a model with uniform logits over V tokens
scores V to float64 rounding.

Reference (key in ``book/references.bib``): sun2024simple (Wanda), frantar2023sparsegpt.
Taught in: the one-shot pruning chapters.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["default_logits", "perplexity", "tokenize_for_lm"]


def default_logits(model: Callable, x: Tensor) -> Tensor:
    """``model(x)`` as logits (B, T, V): its ``.logits`` (HF models, the project's TinyGPT),
    the first element of a tuple, or the tensor itself."""
    out = model(x)
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, (tuple, list)):
        return out[0]
    if isinstance(out, Tensor):
        return out
    raise TypeError(f"cannot find logits in a {type(out).__name__}; pass logits_fn")


def _device(model) -> torch.device:
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def perplexity(model: Callable, token_ids: Tensor, *, block_size: int = 256, batch_size: int = 8,
               logits_fn: Callable[[Callable, Tensor], Tensor] = default_logits,
               progress: bool = False) -> float:
    """Perplexity of ``model`` on ``token_ids`` over non-overlapping blocks (module docstring).

    Args:
        model: a causal LM; called through ``logits_fn`` under ``torch.no_grad()``. Its mode is
            left alone: put it in ``eval()`` first (dropout changes the number).
        token_ids: (N,) integer token stream, e.g. from :func:`tokenize_for_lm`.
        block_size: tokens per block, S >= 2; at most the model's context length.
        batch_size: blocks per forward pass (B).
        logits_fn: ``logits_fn(model, x)`` -> (B, S, V) logits for ``x`` (B, S).
        progress: show a progress bar over batches.

    Returns:
        ``exp(mean NLL)`` over the ``(N // S) * (S - 1)`` predicted tokens.
    """
    if token_ids.dim() != 1 or token_ids.is_floating_point():
        raise ValueError(f"token_ids must be a 1-D integer tensor (got {tuple(token_ids.shape)}, "
                         f"{token_ids.dtype})")
    if block_size < 2 or batch_size < 1:
        raise ValueError(f"need block_size >= 2 and batch_size >= 1 "
                         f"(got block_size={block_size}, batch_size={batch_size})")
    n_blocks = token_ids.numel() // block_size
    if n_blocks == 0:
        raise ValueError(f"{token_ids.numel()} tokens make no block of {block_size}")
    blocks = token_ids[: n_blocks * block_size].long().view(n_blocks, block_size)
    device = _device(model)
    nll = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for start in tqdm(range(0, n_blocks, batch_size), disable=not progress, desc="perplexity"):
            x = blocks[start:start + batch_size].to(device)        # (B, S)
            logits = logits_fn(model, x)                             # (B, S, V)
            for row, target in zip(logits[:, :-1], x[:, 1:]):        # (S-1, V), (S-1,)
                nll += F.cross_entropy(row.double(), target, reduction="sum").cpu()
    return math.exp(nll.item() / (n_blocks * (block_size - 1)))


def tokenize_for_lm(tokenizer, text: str) -> Tensor:
    """A text as one (N,) LongTensor of token ids, with no special tokens (no BOS/EOS) added.

    Args:
        tokenizer: a Hugging Face tokenizer.
        text: the whole evaluation text (documents joined as the chapter chooses).
    """
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)
