"""TinyGPT: a pre-LayerNorm GPT (nanoGPT-style) with swappable attention and FFN.

Dimension letters (used in every shape comment below):
    B batch, T tokens (T <= block_size), C n_embd, nh n_head, hs head size C // nh,
    F FFN width mlp_ratio * C, V vocab_size.

Design:
    * ``attention`` and ``ffn`` are factories ``(config, layer_index) -> nn.Module``, so
      Chapter 5 swaps in a mixture-of-experts FFN and Chapter 6 a sparse attention.
    * A block's attention or FFN returns either a tensor ``(B, T, C)`` or a
      :class:`BlockOutput` ``(out, aux)``; the ``aux`` losses (e.g. an MoE load-balancing
      loss, already scaled by its module's coefficient) are summed over layers into
      :attr:`GPTOutput.aux`. Nothing is stored on modules or globals.
    * Hook points are ``nn.Identity`` modules named ``hook_*`` (TransformerLens's
      convention), used with the standard ``register_forward_hook`` or :func:`capture`.
      ``hook_attn_probs`` is a :class:`~.hooks.HookPoint`, which counts its hooks: the
      attention forms its probabilities only while one is registered.

References (keys in ``book/references.bib``): radford2019language (GPT-2: pre-LN blocks,
residual-projection init), vaswani2017attention (scaled dot-product attention);
karpathy2022nanogpt (nanoGPT ``model.py``: the layout and names modelled here, read, not
copied).

Taught in: Chapter 0, "The bench"; used by Chapters 3 and 5-7.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from .hooks import HookPoint

__all__ = [
    "TinyGPTConfig", "tinygpt_small", "tinygpt_medium", "TINYGPT_PRESETS", "train_flops_per_token",
    "BlockOutput", "GPTOutput", "CausalSelfAttention", "FeedForward", "Block", "TinyGPT",
    "capture", "hook_points",
]

#: Standard deviation of the initial weights (GPT-2, radford2019language; nanoGPT).
INIT_STD = 0.02


@dataclass(frozen=True)
class TinyGPTConfig:
    """Shape of a :class:`TinyGPT`.

    Args:
        vocab_size: V, number of token ids.
        block_size: longest context T the position table covers.
        n_layer: number of transformer blocks.
        n_head: attention heads nh; must divide ``n_embd``.
        n_embd: residual width C.
        dropout: dropout probability in ``[0, 1)`` (attention weights, residual branches,
            embeddings).
        bias: biases in linear layers and LayerNorms (nanoGPT: False is a little better
            and faster).
        mlp_ratio: FFN width F = ``mlp_ratio * n_embd`` (4 in GPT-2).
    """

    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    bias: bool = False
    mlp_ratio: int = 4

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "mlp_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int (got {name}={value!r})")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd must be divisible by n_head (got n_embd={self.n_embd}, "
                             f"n_head={self.n_head})")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must satisfy 0 <= dropout < 1 (got dropout={self.dropout!r})")
        if not isinstance(self.bias, bool):
            raise TypeError(f"bias must be a bool (got {type(self.bias).__name__})")

    @property
    def head_size(self) -> int:
        """hs = C // nh."""
        return self.n_embd // self.n_head

    @property
    def d_ff(self) -> int:
        """F = mlp_ratio * C, the FFN's hidden width."""
        return self.mlp_ratio * self.n_embd


def train_flops_per_token(config: TinyGPTConfig, n_params: int) -> int:
    """Approximate training FLOPs per token: ``6 N + 12 n_layer block_size n_embd``.

    6 N for the weights (forward 2 N, backward 4 N; kaplan2020scaling, Table 1) plus the
    attention scores and weighted values, kept because T is not small next to C here.
    ``n_params`` is the non-embedding count, :func:`~sparsity_core.models.num_params`.
    """
    return 6 * n_params + 12 * config.n_layer * config.block_size * config.n_embd


def tinygpt_small(vocab_size: int, **overrides) -> TinyGPTConfig:
    """The book's small language model: 4 layers, 4 heads of 40, C = 160, T = 128.

    1.23M non-embedding parameters (12 C^2 per block: 4 C^2 attention, 8 C^2 FFN) plus
    ``(V + 128) * 160`` embedding parameters (35k for V = 96 characters); 8.4 MFLOPs per
    training token.

    Sizing: 2 CPU cores sustain roughly 100-130 GFLOP/s on these matrix sizes (measured
    15k tokens/s, batch 32 x 128, on 2 cores of an AMD EPYC), so 5 minutes buy about 4M
    tokens, 3-4 tokens per parameter. That is below Chinchilla's ~20 tokens per parameter
    (hoffmann2022training), which would pick a ~0.5M model for this budget (6 N D = 3.4e13
    FLOPs with D = 20 N); we keep 2-3x more parameters so that chapters can prune it to
    high sparsity and still have a working model. T = 128 characters spans a couple of lines of text.
    ``overrides`` replace any field, e.g. ``tinygpt_small(V, dropout=0.1)``.
    """
    return TinyGPTConfig(**{**dict(vocab_size=vocab_size, block_size=128, n_layer=4,
                                   n_head=4, n_embd=160), **overrides})


def tinygpt_medium(vocab_size: int, **overrides) -> TinyGPTConfig:
    """The book's medium language model: 6 layers, 8 heads of 32, C = 256, T = 256.

    4.72M non-embedding parameters (3.8x small), 33 MFLOPs per training token (3.9x
    small): measured 4.2k tokens/s (batch 16 x 256, same machine), so 5 minutes buy about
    1.3M tokens, a quarter of a token per parameter. It is the model for experiments that
    need depth and capacity (pruning a pretrained model, splitting FFNs into experts,
    autoencoders on a middle layer) more than a low loss; train it with small batches
    (8-16 sequences) so those tokens still make several hundred optimizer steps.
    T = 256 gives sparse attention patterns (Chapter 6) room to differ from dense.
    ``overrides`` replace any field.
    """
    return TinyGPTConfig(**{**dict(vocab_size=vocab_size, block_size=256, n_layer=6,
                                   n_head=8, n_embd=256), **overrides})


#: Named presets, each a function of ``vocab_size``.
TINYGPT_PRESETS: dict[str, Callable[..., TinyGPTConfig]] = {
    "small": tinygpt_small, "medium": tinygpt_medium,
}


class BlockOutput(NamedTuple):
    """What an attention or FFN module may return instead of a bare tensor.

    ``out`` is ``(B, T, C)``; ``aux`` maps names to scalar auxiliary losses (already
    weighted by the module's own coefficient), summed over layers into ``GPTOutput.aux``.
    A plain ``(tensor, dict)`` tuple is accepted too.
    """

    out: torch.Tensor
    aux: dict[str, torch.Tensor]


@dataclass(frozen=True)
class GPTOutput:
    """Result of :meth:`TinyGPT.forward`.

    Attributes:
        logits: ``(B, T, V)``.
        loss: mean next-token cross-entropy (scalar) when targets were given, else None.
            It does not include ``aux``; add those terms in the training loss
            (``sparsity_core.training.lm_loss`` does).
        aux: auxiliary losses from the blocks, summed over layers, by name.
    """

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    aux: dict[str, torch.Tensor] = field(default_factory=dict)


def _split(result: object, what: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Normalise a sub-module's output to ``(tensor, aux)``."""
    if isinstance(result, torch.Tensor):
        return result, {}
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.Tensor) \
            and isinstance(result[1], dict):
        return result[0], result[1]
    raise TypeError(f"{what} must return a Tensor (B, T, C) or a BlockOutput (tensor, aux dict) "
                    f"(got {type(result).__name__})")


def _add_aux(total: dict[str, torch.Tensor], aux: dict[str, torch.Tensor]) -> None:
    for name, value in aux.items():
        total[name] = total[name] + value if name in total else value


class CausalSelfAttention(nn.Module):
    r"""Multi-head causal self-attention.

    .. math:: \mathrm{softmax}\!\left(QK^\top / \sqrt{hs} + M\right) V,
       \quad M_{ij} = -\infty \text{ for } j > i

    Two paths compute the same thing: ``F.scaled_dot_product_attention(is_causal=True)``
    (fast, never forms the T x T matrix) and an explicit softmax of masked ``QK^T``,
    taken whenever the probabilities are wanted: ``explicit=True`` or any forward hook
    (or pre-hook) on ``hook_attn_probs``. Both agree to float rounding (tested); with
    dropout in training mode they draw different dropout masks.

    Hook points: ``hook_q``, ``hook_k``, ``hook_v`` ``(B, nh, T, hs)``;
    ``hook_attn_probs`` ``(B, nh, T, T)`` (before attention dropout). As with any forward
    hook, one that returns a tensor replaces the module's output (ablations, masks).

    Args:
        config: the model's :class:`TinyGPTConfig`.
        layer_index: position of the block (unused here; part of the factory signature).
        explicit: always take the explicit path.
    """

    def __init__(self, config: TinyGPTConfig, layer_index: int = 0, *, explicit: bool = False):
        super().__init__()
        self.n_head, self.dropout, self.explicit = config.n_head, config.dropout, explicit
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.hook_q, self.hook_k, self.hook_v = nn.Identity(), nn.Identity(), nn.Identity()
        self.hook_attn_probs = HookPoint()  # knows whether a hook wants the probabilities

    def probs_requested(self) -> bool:
        """True when the explicit path will run (flag set or a hook on ``hook_attn_probs``)."""
        return self.explicit or self.hook_attn_probs.hooked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q = self.hook_q(q.view(B, T, self.n_head, hs).transpose(1, 2))  # (B, nh, T, hs)
        k = self.hook_k(k.view(B, T, self.n_head, hs).transpose(1, 2))  # (B, nh, T, hs)
        v = self.hook_v(v.view(B, T, self.n_head, hs).transpose(1, 2))  # (B, nh, T, hs)
        if self.probs_requested():
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, nh, T, T)
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            probs = self.hook_attn_probs(scores.masked_fill(future, float("-inf")).softmax(dim=-1))
            y = self.attn_dropout(probs) @ v  # (B, nh, T, hs)
        else:
            p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C), heads side by side
        return self.resid_dropout(self.c_proj(y))


class FeedForward(nn.Module):
    """Position-wise FFN ``c_proj(GELU(c_fc(x)))`` (GPT-2's "MLP").

    Hook point: ``hook_mlp_act`` ``(B, T, F)``, the post-GELU activations (the ones
    Chapter 9 measures for activation sparsity and Chapter 7's autoencoders read).

    Args:
        config: the model's :class:`TinyGPTConfig`.
        layer_index: position of the block (unused; part of the factory signature).
    """

    def __init__(self, config: TinyGPTConfig, layer_index: int = 0):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.d_ff, bias=config.bias)
        self.gelu = nn.GELU()
        self.hook_mlp_act = nn.Identity()
        self.c_proj = nn.Linear(config.d_ff, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hook_mlp_act(self.gelu(self.c_fc(x)))  # (B, T, F)
        return self.dropout(self.c_proj(h))  # (B, T, C)


Factory = Callable[[TinyGPTConfig, int], nn.Module]


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln_1(x))``, then ``+ mlp(ln_2(x))``.

    Hook points (all ``(B, T, C)``): ``hook_resid_pre`` (block input), ``hook_resid_mid``
    (after attention), ``hook_resid_post`` (block output).

    Returns ``(x, aux)``: the new residual stream and this block's auxiliary losses.
    """

    def __init__(self, config: TinyGPTConfig, layer_index: int, attention: Factory, ffn: Factory):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = _build(attention, config, layer_index, "attention")
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = _build(ffn, config, layer_index, "ffn")
        self.hook_resid_pre = nn.Identity()
        self.hook_resid_mid = nn.Identity()
        self.hook_resid_post = nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = self.hook_resid_pre(x)  # (B, T, C)
        a, aux_attn = _split(self.attn(self.ln_1(x)), "attention")
        x = self.hook_resid_mid(x + a)
        m, aux_mlp = _split(self.mlp(self.ln_2(x)), "ffn")
        aux: dict[str, torch.Tensor] = {}
        _add_aux(aux, aux_attn)
        _add_aux(aux, aux_mlp)
        return self.hook_resid_post(x + m), aux


def _build(factory: Factory, config: TinyGPTConfig, layer_index: int, what: str) -> nn.Module:
    module = factory(config, layer_index)
    if not isinstance(module, nn.Module):
        raise TypeError(f"the {what} factory must return an nn.Module (got {type(module).__name__})")
    return module


class TinyGPT(nn.Module):
    """Decoder-only transformer: token + position embeddings, ``n_layer`` pre-LN blocks, a
    final LayerNorm and an LM head tied to the token embedding (press2017using, as GPT-2).

    Args:
        config: a :class:`TinyGPTConfig`.
        attention: factory ``(config, layer_index) -> module`` for each block's attention,
            mapping ``(B, T, C)`` to ``(B, T, C)`` or a :class:`BlockOutput`; default
            :class:`CausalSelfAttention`.
        ffn: same for the FFN; default :class:`FeedForward`.
        generator: draws the initial weights (default: the global RNG).

    Initialisation (GPT-2, as nanoGPT): every ``nn.Linear`` and ``nn.Embedding`` in the
    model, custom modules included, gets N(0, 0.02) weights and zero biases; every weight
    named ``c_proj.weight`` gets std ``0.02 / sqrt(2 n_layer)`` (two residual branches per
    block). LayerNorms and other parameters keep their own initialisation. A custom
    module that needs another scheme re-initialises itself after the model is built.
    """

    def __init__(self, config: TinyGPTConfig, attention: Factory | None = None,
                 ffn: Factory | None = None, *, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(config, TinyGPTConfig):
            raise TypeError(f"config must be a TinyGPTConfig (got {type(config).__name__})")
        for name, factory in (("attention", attention), ("ffn", ffn)):
            if factory is not None and not callable(factory):
                raise TypeError(f"{name} must be a callable (config, layer_index) -> nn.Module")
        checks.generator(generator)
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(config, i, attention or CausalSelfAttention, ffn or FeedForward)
            for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one (V, C) matrix
        self._init_weights(generator)

    @torch.no_grad()
    def _init_weights(self, generator: torch.Generator | None) -> None:
        proj_std = INIT_STD / math.sqrt(2 * self.config.n_layer)
        for module in self.modules():
            if isinstance(module, nn.Linear) and module is self.lm_head:
                continue  # tied to wte, initialised there
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, INIT_STD, generator=generator)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, proj_std, generator=generator)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> GPTOutput:
        """Logits for every position, and the loss if ``targets`` are given.

        Args:
            idx: token ids ``(B, T)``, int64, ``T <= block_size``.
            targets: next-token ids ``(B, T)``; positions equal to -1 are ignored.

        Returns:
            :class:`GPTOutput` with logits ``(B, T, V)``, loss and summed aux losses.
        """
        if idx.dim() != 2 or idx.dtype != torch.long:
            raise ValueError(f"idx must be a (B, T) int64 tensor (got {tuple(idx.shape)} {idx.dtype})")
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size={self.config.block_size}")
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        aux: dict[str, torch.Tensor] = {}
        for block in self.blocks:
            x, block_aux = block(x)
            _add_aux(aux, block_aux)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            if targets.shape != idx.shape:
                raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)} "
                                 f"(got {tuple(targets.shape)})")
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), ignore_index=-1)
        return GPTOutput(logits=logits, loss=loss, aux=aux)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, *, generator: torch.Generator,
                 temperature: float = 1.0, top_k: int | None = None) -> torch.Tensor:
        """Sample ``max_new_tokens`` tokens after ``idx``, feeding each back in.

        The context is cropped to its last ``block_size`` tokens. The model runs in eval
        mode (no dropout) and its previous mode is restored, so the samples depend only on
        the weights, ``idx`` and ``generator``.

        Args:
            idx: prompt ``(B, T0)``, int64.
            max_new_tokens: tokens to append (>= 0).
            generator: the only source of randomness (``torch.multinomial``); on idx's device.
            temperature: logits are divided by it (> 0).
            top_k: sample among the k most likely tokens only (>= 1; capped at V).

        Returns:
            ``(B, T0 + max_new_tokens)`` int64: the prompt followed by the samples.
        """
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator (got {type(generator).__name__})")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be an int >= 0 (got {max_new_tokens!r})")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 (got temperature={temperature})")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be None or an int >= 1 (got top_k={top_k!r})")
        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                context = idx[:, -self.config.block_size:]  # (B, <= block_size)
                logits = self(context).logits[:, -1, :] / temperature  # (B, V)
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = logits.softmax(dim=-1)
                nxt = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
                idx = torch.cat([idx, nxt], dim=1)
        finally:
            self.train(was_training)
        return idx


def hook_points(model: nn.Module) -> list[str]:
    """Names of every ``hook_*`` module in ``model`` (paths for :func:`capture`)."""
    return [name for name, _ in model.named_modules() if name.rsplit(".", 1)[-1].startswith("hook_")]


@contextmanager
def capture(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of the named modules during forward passes inside the ``with``.

    Example::

        with capture(model, ["blocks.0.attn.hook_attn_probs", "blocks.1.mlp.hook_mlp_act"]) as acts:
            model(idx)
        acts["blocks.0.attn.hook_attn_probs"]  # (B, nh, T, T), detached

    Args:
        model: any module.
        names: module paths as in ``model.named_modules()`` (see :func:`hook_points`).

    Yields:
        A dict filled on each forward pass with the detached output of each module (its
        first element if the output is a tuple). A module called more than once (e.g.
        during ``generate``) keeps its last output. Hooks are removed on exit, even on error.
    """
    if isinstance(names, str):
        raise TypeError("names must be a list of module paths, not a single string")
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"no module named {missing} in the model; hook points: {hook_points(model)}")
    store: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(module, inputs, output):
            if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
                output = output[0]
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"cannot capture {name}: its output is a {type(output).__name__}")
            store[name] = output.detach()
        return hook

    handles = [modules[n].register_forward_hook(record(n)) for n in names]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
