"""Find the list of transformer blocks inside a model, whichever family it comes from.

Layer-by-layer code (one-shot pruning in :mod:`sparsity_core.pruning.sequential`, the hooks
of :mod:`sparsity_core.pretrained.collect`) walks a transformer one block at a time; this is
where it finds the blocks. Nothing here imports ``transformers``: models are matched by the
names of their submodules only.
"""
from __future__ import annotations

from torch import nn

__all__ = ["BLOCK_PATHS", "block_list"]

#: Where the block list lives, tried in order: Llama (causal LM / bare), BERT (bare / wrapped),
#: then nanoGPT-style names (``transformer.h``, ``blocks``) for the project's own models.
BLOCK_PATHS = ("model.layers", "layers", "encoder.layer", "bert.encoder.layer",
               "transformer.h", "blocks")


def block_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """``(path, blocks)``: where the transformer blocks live (``"model.layers"``, ...) and the list.

    The first non-empty ``nn.ModuleList`` found at one of :data:`BLOCK_PATHS` is returned.

    Raises:
        TypeError: the model has no block list at any known path.
    """
    for path in BLOCK_PATHS:
        try:
            found = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(found, nn.ModuleList) and len(found) > 0:
            return path, found
    raise TypeError(f"{type(model).__name__}: no transformer block list at any of {BLOCK_PATHS}")
