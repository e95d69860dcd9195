"""Token ids for hash-routed MoE layers inside a TinyGPT.

A hash layer routes token ``t`` by a fixed table, ``expert = table[t]`` (roller2021hash,
abstract: the feedforward layer hashes "to different sets of weights depending on the current
token"), so it needs the *ids* of the tokens whose hidden states it receives. TinyGPT's blocks
call their FFN with the hidden states only (its ``ffn`` slot is ``(B, T, C) -> (B, T, C)``, see
:mod:`sparsity_core.models.tinygpt`). :func:`feed_token_ids`
bridges the two with PyTorch's own forward hooks, without changing the model's code:

* a pre-hook on the model keeps the ``idx`` ``(B, T)`` of the call in progress, and a hook
  after the call forgets it (nothing outlives one forward pass);
* a pre-hook on every :class:`~sparsity_core.moe.layer.MoEFFN` whose router is a
  :class:`~sparsity_core.moe.hashing.HashRouter` passes those ids as ``token_ids``.

Position ``(b, t)`` of the FFN's input is the hidden state of token ``idx[b, t]`` (TinyGPT
neither reorders nor pools positions), which is the token ParlAI's hash layer routes by
(facebookresearch/ParlAI ``projects/params_vs_compute/hash_ladder/hash_ladder.py``, read, not
copied: its decoder passes the input ids down to the hash layer's FFN, which looks each
position's id up in its table).

Taught in: Chapter 5, "Mixture-of-experts", part 2.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..models.tinygpt import TinyGPT
from .hashing import HashRouter
from .layer import MoEFFN

__all__ = ["hash_routed_layers", "feed_token_ids"]


def hash_routed_layers(model: TinyGPT) -> list[int]:
    """Indices of the blocks of ``model`` whose FFN is an :class:`MoEFFN` with a
    :class:`HashRouter`."""
    if not isinstance(model, TinyGPT):
        raise TypeError(f"model must be a TinyGPT (got {type(model).__name__})")
    return [i for i, block in enumerate(model.blocks)
            if isinstance(block.mlp, MoEFFN) and isinstance(block.mlp.router, HashRouter)]


def feed_token_ids(model: TinyGPT) -> list[RemovableHandle]:
    """Make every hash-routed FFN of ``model`` receive the ids of the tokens it routes.

    Args:
        model: a :class:`TinyGPT` with at least one hash-routed :class:`MoEFFN`
            (:func:`hash_routed_layers`).

    Returns:
        The hooks' handles; ``for h in handles: h.remove()`` detaches them.

    Raises:
        ValueError: no block of ``model`` is hash-routed.

    A hash-routed FFN called outside ``model(idx)`` (e.g. on its own) still needs its
    ``token_ids`` passed by the caller; the hook raises if there are none.
    """
    layers = hash_routed_layers(model)
    if not layers:
        raise ValueError("model has no MoEFFN with a HashRouter: nothing to feed token ids to")
    current: dict[str, torch.Tensor] = {}

    def keep(module: nn.Module, args: tuple, kwargs: dict) -> None:
        idx = args[0] if args else kwargs.get("idx")
        if isinstance(idx, torch.Tensor):
            current["idx"] = idx

    def forget(module: nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        current.pop("idx", None)

    def give(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if kwargs.get("token_ids") is not None:
            return args, kwargs
        if "idx" not in current:
            raise RuntimeError("a hash-routed FFN was called outside its model's forward pass: "
                               "pass token_ids yourself")
        return args, {**kwargs, "token_ids": current["idx"]}

    handles = [model.register_forward_pre_hook(keep, with_kwargs=True),
               model.register_forward_hook(forget, with_kwargs=True, always_call=True)]
    handles += [model.blocks[i].mlp.register_forward_pre_hook(give, with_kwargs=True) for i in layers]
    return handles
