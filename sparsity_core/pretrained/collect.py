"""Read a pretrained transformer's internals with forward hooks, and list its prunable layers.

Two architectures are supported, the two the book loads: Hugging Face Llama (SmolLM2, see
:mod:`.smollm2`) and BERT (all-MiniLM-L6-v2, see :mod:`.minilm`). They differ only in where
each quantity lives inside a block (:class:`_Arch`); the hook skeleton is shared.

Dimension letters: B batch, T tokens, L blocks, D model width (576 SmolLM2, 384 MiniLM),
H query heads (9, 12), Hkv key/value heads (3 for SmolLM2's grouped-query attention, 12),
Dh head width (64, 32), F FFN width (1536 for both).

Points (``i`` is a block index, ``0 <= i < L``; ``"kind.*"`` asks for every index):

===================  ==================  ============================================================
point                shape               what
===================  ==================  ============================================================
``hidden.i``         (B, T, D)           residual stream entering block ``i``; ``hidden.L`` is the
                                         output of the last block, *before* Llama's final norm
                                         (``0 <= i <= L``). For BERT ``hidden.0`` is the embedding
                                         output (after its LayerNorm), as in ``output_hidden_states``.
``attn_probs.i``     (B, H, T, T)        softmax attention probabilities (query rows sum to 1); needs
                                         ``attn_implementation="eager"``.
``q.i``              (B, H, T, Dh)       query projection, split into heads. Llama: *before* the
``k.i``              (B, Hkv, T, Dh)     rotary embedding (the hook sits on ``q_proj``/``k_proj``), so
                                         ``q @ k^T`` gives the attention logits only after RoPE; BERT:
                                         ``softmax(q k^T / sqrt(Dh) + mask)`` is ``attn_probs.i``.
``mlp_act.i``        (B, T, F)           FFN hidden activation. Llama: ``silu(gate) * up``, the input
                                         of ``down_proj``; BERT: the ``.intermediate`` output,
                                         ``gelu(W1 x + b1)``.
===================  ==================  ============================================================
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..models.blocks import block_list

__all__ = ["POINT_KINDS", "collect", "block_list", "decoder_layers", "linear_layers", "expand_points"]

POINT_KINDS = ("hidden", "attn_probs", "q", "k", "mlp_act")


@dataclass(frozen=True)
class _Arch:
    """Where each point lives inside one block (paths relative to the block)."""
    name: str
    attn: str       # module whose forward returns (output, attention probabilities)
    q: str          # Linear whose output is the query projection (B, T, H*Dh)
    k: str          # Linear whose output is the key projection (B, T, Hkv*Dh)
    mlp_act: str    # module carrying the FFN activation
    mlp_act_is_input: bool  # True: the activation is its input; False: its output


_LLAMA = _Arch("llama", "self_attn", "self_attn.q_proj", "self_attn.k_proj", "mlp.down_proj", True)
_BERT = _Arch("bert", "attention.self", "attention.self.query", "attention.self.key",
              "intermediate", False)


def _get(module: nn.Module, path: str) -> nn.Module | None:
    try:
        return module.get_submodule(path)
    except AttributeError:
        return None


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's transformer blocks, in forward order (Llama ``model.layers``, BERT ``encoder.layer``).

    The layer-by-layer pruning pipeline (SparseGPT, Wanda) feeds the calibration activations
    through these one block at a time.
    """
    return block_list(model)[1]


def linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """The prunable ``nn.Linear`` layers of the transformer blocks, in forward order.

    Embeddings, the LM head and the pooler are outside the blocks and not listed. Keys are
    full names, usable with ``model.get_submodule``. Order is registration order inside each
    block, which for both architectures is the forward order: SmolLM2 has 7 per block
    (``self_attn.{q,k,v,o}_proj``, ``mlp.{gate,up,down}_proj``; ``gate`` and ``up`` read the
    same input), MiniLM 6 (``attention.self.{query,key,value}``, ``attention.output.dense``,
    ``intermediate.dense``, ``output.dense``).
    """
    path, blocks = block_list(model)
    return {f"{path}.{i}.{name}": m
            for i, block in enumerate(blocks)
            for name, m in block.named_modules() if isinstance(m, nn.Linear)}


def _arch(block: nn.Module) -> _Arch:
    for arch in (_LLAMA, _BERT):
        if _get(block, arch.q) is not None and _get(block, arch.mlp_act) is not None:
            return arch
    raise TypeError(f"collect() supports HF Llama and BERT blocks, not {type(block).__name__}")


def expand_points(points: list[str], n_layers: int) -> list[str]:
    """Validate point names and expand ``"kind.*"``; see the module docstring for the names."""
    out = []
    for point in points:
        kind, _, index = point.partition(".")
        if kind not in POINT_KINDS:
            raise ValueError(f"unknown point {point!r}: kind must be one of {POINT_KINDS}")
        top = n_layers if kind == "hidden" else n_layers - 1
        if index == "*":
            out += [f"{kind}.{i}" for i in range(top + 1)]
            continue
        if not index.isdigit() or int(index) > top:
            raise ValueError(f"bad point {point!r}: index must be '*' or 0..{top}")
        out.append(f"{kind}.{int(index)}")
    return list(dict.fromkeys(out))


def _heads(x: Tensor, n_heads: int) -> Tensor:
    """(B, T, H*Dh) -> (B, H, T, Dh)."""
    b, t, width = x.shape
    return x.view(b, t, n_heads, width // n_heads).transpose(1, 2)


def collect(model: nn.Module, inputs: Mapping[str, Tensor] | Tensor,
            points: list[str]) -> dict[str, Tensor]:
    """Run one forward pass (no grad) and return the requested internals, keyed by point name.

    Args:
        model: a Hugging Face Llama or BERT model (with or without its head), loaded with
            ``attn_implementation="eager"`` if ``attn_probs`` points are asked for.
        inputs: a tokenizer's output (passed as ``model(**inputs)``) or ``input_ids`` (B, T).
        points: names such as ``"hidden.3"``, ``"attn_probs.*"`` (table in the module docstring).

    Returns:
        ``{point: tensor}`` in the order asked, shapes as in the module docstring. Every hook
        is removed before returning, also when the forward raises.
    """
    _, blocks = block_list(model)
    arch = _arch(blocks[0])
    n_layers = len(blocks)
    names = expand_points(points, n_layers)
    cfg = model.config
    n_q = cfg.num_attention_heads
    n_kv = getattr(cfg, "num_key_value_heads", None) or n_q
    got: dict[str, Tensor] = {}

    def store(name: str, fn: Callable[..., Tensor]):
        def hook(module, args, *rest):
            got[name] = fn(args, rest)
        return hook

    def block_input(args, rest):
        return args[0] if args else rest[0]["hidden_states"]

    def first(x):
        return x[0] if isinstance(x, tuple) else x

    def probs(args, rest):
        weights = rest[-1][1]
        if weights is None:
            raise ValueError("attention probabilities need attn_implementation='eager'")
        return weights

    handles = []
    try:
        for name in names:
            kind, i = name.split(".")
            block = blocks[min(int(i), n_layers - 1)]
            if kind == "hidden" and int(i) < n_layers:
                handles.append(block.register_forward_pre_hook(
                    store(name, block_input), with_kwargs=True))
            elif kind == "hidden":
                handles.append(block.register_forward_hook(store(name, lambda a, r: first(r[-1]))))
            elif kind == "attn_probs":
                handles.append(block.get_submodule(arch.attn).register_forward_hook(store(name, probs)))
            elif kind in ("q", "k"):
                heads = n_q if kind == "q" else n_kv
                handles.append(block.get_submodule(getattr(arch, kind)).register_forward_hook(
                    store(name, lambda a, r, h=heads: _heads(r[-1], h))))
            else:
                take = (lambda a, r: a[0]) if arch.mlp_act_is_input else (lambda a, r: r[-1])
                module = block.get_submodule(arch.mlp_act)
                register = (module.register_forward_pre_hook if arch.mlp_act_is_input
                            else module.register_forward_hook)
                handles.append(register(store(name, take)))
        with torch.no_grad():
            if isinstance(inputs, Tensor):
                model(input_ids=inputs)
            else:
                model(**inputs)
    finally:
        for h in handles:
            h.remove()
    return {name: got[name] for name in names}
