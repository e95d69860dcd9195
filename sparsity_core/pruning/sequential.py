"""One-shot pruning of a pretrained transformer, block by block (SparseGPT's and Wanda's pipeline).

The reference codes (``IST-DASLab/sparsegpt`` ``opt.py::opt_sequential``, ``locuslab/wanda``
``lib/prune.py::prune_wanda``) prune a model one transformer block at a time:

1. run the calibration batches up to the first block and keep that block's inputs
   (and the extra arguments the model passes to every block: attention mask, rotary
   position embeddings, ...);
2. for block ``i``: run it on the kept inputs with hooks on its ``Linear`` layers to gather
   their input statistics (:class:`~sparsity_core.calibration.CalibrationCollector`), prune
   every one of those layers, then run the **pruned** block again: its outputs are the
   next block's inputs. Later blocks thus see the errors of earlier pruning, and
   calibrate on them.

Embeddings, the final norm and the LM head are outside the blocks and are never pruned.
All ``Linear`` layers of a block are calibrated in one pass and pruned together, the
references' default (SparseGPT's Llama script can also go sub-layer by sub-layer).
``magnitude`` needs no calibration: with ``calibration=None`` it prunes every block
directly.

Methods: ``"magnitude"`` (``|W|``, one threshold per layer, SparseGPT's ``--gmp``
baseline), ``"wanda"`` (:mod:`.wanda`, per output row), ``"sparsegpt"`` (:mod:`.sparsegpt`);
each unstructured at ``sparsity`` or N:M with ``nm=(n, m)``. ``"dsnot"`` (:mod:`.dsnot`,
unstructured only) refines Wanda's mask by prune-and-grow swaps in every layer whose name
inside the block does not start with one of ``dsnot_skip`` (default ``("mlp",)``, the
reference's ``--skip_layer mlp``: attention only).

Taught in: Chapter 3, "Pruning II".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
from torch import nn

from ..calibration import CalibrationCollector
from ..masks import pattern_mask
from ..models.blocks import block_list
from .dsnot import dsnot_mask
from .sparsegpt import BLOCKSIZE, PERCDAMP, sparsegpt_prune
from .wanda import wanda_mask

__all__ = ["METHODS", "LayerRecord", "prune_sequential"]

METHODS = ("magnitude", "wanda", "sparsegpt", "dsnot")


@dataclass
class LayerRecord:
    """What pruning did to one ``Linear``.

    Attributes:
        name: full module name, e.g. ``'model.layers.3.mlp.down_proj'``.
        shape: ``(D_out, D_in)``.
        kept: weights kept by the mask.
        seconds: wall time of the method on this layer (statistics excluded).
        rel_error: ``||(W - W') X^T||^2 / ||W X^T||^2`` on the calibration inputs this
            layer saw, from the exact ``X^T X``; None when it was not measured.
    """

    name: str
    shape: tuple[int, int]
    kept: int
    seconds: float
    rel_error: float | None = None

    @property
    def numel(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def sparsity(self) -> float:
        return 1 - self.kept / self.numel


class _Stop(Exception):
    """Raised by the capture hook once the first block's inputs are recorded."""


def _call(model: nn.Module, batch) -> None:
    hugging_face = getattr(getattr(model, "config", None), "use_cache", None) is not None
    extra = {"use_cache": False} if hugging_face else {}    # no KV cache: blocks are re-run
    if isinstance(batch, Mapping):
        model(**batch, **extra)
    elif hugging_face:
        model(input_ids=batch, **extra)
    else:
        model(batch)                                         # the project's own models: forward(idx)


def _first_block_inputs(model: nn.Module, block: nn.Module, calibration: Iterable) -> list:
    captured: list = []

    def hook(module, args, kwargs):
        captured.append((args, kwargs))
        raise _Stop

    handle = block.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        for batch in calibration:
            try:
                _call(model, batch)
            except _Stop:
                pass
    finally:
        handle.remove()
    if not captured:
        raise ValueError("calibration is empty: give at least one batch")
    return captured


def _run(block: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor:
    out = block(*args, **kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out


def _with_hidden(args: tuple, kwargs: dict, hidden: torch.Tensor) -> tuple[tuple, dict]:
    """The block call with its hidden-state input replaced (positional, or ``hidden_states=``)."""
    if args:
        return (hidden,) + tuple(args[1:]), kwargs
    if "hidden_states" in kwargs:
        return args, {**kwargs, "hidden_states": hidden}
    raise TypeError("cannot find the hidden-state input of the first block's call")


def _prune_weight(method: str, weight: torch.Tensor, cal: CalibrationCollector | None, name: str,
                  sparsity, nm, blocksize: int, percdamp: float, refine: bool,
                  dsnot_options: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
    if method == "magnitude":
        mask = pattern_mask(weight.abs(), sparsity=sparsity, nm=nm, scope="layer")
        return torch.where(mask, weight, 0.0), mask
    if method in ("wanda", "dsnot"):
        mask = wanda_mask(weight, cal.column_norms(name), sparsity=sparsity, nm=nm, scope="row")
        if method == "dsnot" and refine:
            mask = dsnot_mask(weight, mask, cal.column_means(name), cal.column_variances(name),
                              cal.column_norms(name), **dsnot_options)
        return torch.where(mask, weight, 0.0), mask
    res = sparsegpt_prune(weight, cal.hessian(name), sparsity=sparsity, nm=nm,
                          blocksize=blocksize, percdamp=percdamp)
    return res.weight, res.mask


def _relative_error(before: torch.Tensor, after: torch.Tensor, xtx: torch.Tensor) -> float:
    """``tr(D XtX D^T) / tr(W XtX W^T)`` with ``D = W - W'``, all float64."""
    W, D = before.to(torch.float64), (before - after).to(torch.float64)
    return float(torch.einsum("ri,ij,rj->", D, xtx, D) / torch.einsum("ri,ij,rj->", W, xtx, W))


@torch.no_grad()
def prune_sequential(model: nn.Module, calibration: Iterable | None, *, method: str,
                     sparsity: float | None = None, nm: tuple[int, int] | None = None,
                     measure_error: bool = False, blocksize: int = BLOCKSIZE,
                     percdamp: float = PERCDAMP, dsnot_skip: tuple[str, ...] = ("mlp",),
                     dsnot_options: Mapping | None = None, progress: bool = False) -> list[LayerRecord]:
    """Prune every ``Linear`` inside the transformer blocks of ``model``, in place.

    Args:
        model: a model with a block list (:func:`sparsity_core.models.block_list`:
            Hugging Face Llama / BERT, TinyGPT); in eval mode.
        calibration: batches, each a ``(B, T)`` token-id tensor or a mapping of keyword
            arguments for the model (``input_ids``, ``attention_mask``); None only for
            ``method="magnitude"`` without ``measure_error``.
        method: ``"magnitude"``, ``"wanda"``, ``"sparsegpt"`` or ``"dsnot"`` (Wanda's mask
            refined by :func:`~.dsnot.dsnot_mask`; unstructured only).
        sparsity: unstructured fraction pruned per layer, in [0, 1); or
        nm: ``(n, m)``: keep ``n`` of every ``m`` consecutive inputs.
        measure_error: also gather ``X^T X`` (always gathered for SparseGPT) and report each
            layer's relative reconstruction error.
        blocksize, percdamp: SparseGPT's settings.
        dsnot_skip: for ``"dsnot"``, layers whose path inside the block starts with one of
            these names keep Wanda's mask (default ``("mlp",)``, as the reference; it names
            the feed-forward of Llama and TinyGPT blocks, not BERT's ``intermediate``/``output``).
        dsnot_options: keyword arguments for :func:`~.dsnot.dsnot_mask` (``max_cycles``,
            ``update_threshold``, ``var_power``, ``same_sign``); default the reference's.
        progress: a tqdm bar over blocks.

    Returns:
        One :class:`LayerRecord` per pruned layer, in forward order.

    Raises:
        ValueError: unknown method, no calibration where it is needed, or a bad pattern.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS} (got {method!r})")
    pattern_mask(torch.ones(1, nm[1] if nm else 1), sparsity=sparsity, nm=nm)   # validate early
    if method == "dsnot" and nm is not None:
        raise ValueError("method='dsnot' is implemented for unstructured sparsity only (got nm)")
    if isinstance(dsnot_skip, str):
        dsnot_skip = (dsnot_skip,)
    needs_data = method != "magnitude" or measure_error
    if needs_data and calibration is None:
        raise ValueError(f"method={method!r}{' with measure_error' if measure_error else ''} needs calibration batches")
    path, blocks = block_list(model)
    inputs = _first_block_inputs(model, blocks[0], calibration) if needs_data else None
    gram = method == "sparsegpt" or measure_error
    records: list[LayerRecord] = []
    bar = range(len(blocks))
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(bar, desc=f"{method} {'%d:%d' % nm if nm else f'{sparsity:.0%}'}", leave=False)
    for i in bar:
        block = blocks[i]
        subs = {f"{path}.{i}.{sub}": sub for sub, m in block.named_modules() if isinstance(m, nn.Linear)}
        layers = {name: block.get_submodule(sub) for name, sub in subs.items()}
        cal = None
        if needs_data:
            with CalibrationCollector(block, layers, gram=gram) as cal:
                for args, kwargs in inputs:
                    _run(block, args, kwargs)
        for name, layer in layers.items():
            before = layer.weight.detach().clone()
            t0 = time.perf_counter()
            refine = subs[name].split(".")[0] not in dsnot_skip
            after, mask = _prune_weight(method, before, cal, name, sparsity, nm, blocksize, percdamp, refine,
                                        dsnot_options or {})
            seconds = time.perf_counter() - t0
            error = _relative_error(before, after, cal.stats[name].xtx) if gram else None
            layer.weight.copy_(after)
            records.append(LayerRecord(name, tuple(before.shape), int(mask.sum()), seconds, error))
        if needs_data and i + 1 < len(blocks):
            inputs = [_with_hidden(args, kwargs, _run(block, args, kwargs)) for args, kwargs in inputs]
    return records
