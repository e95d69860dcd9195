"""Load the book's trained TinyGPT checkpoints (built by ``python -m sparsity_core.assets build tinygpt``)."""
from __future__ import annotations

import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from .. import artifacts
from ..models.tinygpt import TinyGPT, TinyGPTConfig

SIZES = ("small", "medium")


def tinygpt_card(size: str) -> dict:
    """The training record of a committed checkpoint (recipe, params, val loss, throughput)."""
    _check_size(size)
    return json.loads(artifacts.verify(artifacts.tinygpt_card_path(size)).read_text(encoding="utf-8"))


def load_tinygpt(size: str = "small", *, verify: bool = True, dtype: torch.dtype = torch.float32) -> TinyGPT:
    """A trained TinyGPT in eval mode, weights upcast from the committed fp16 to ``dtype``.

    Args:
        size: ``"small"`` or ``"medium"``.
        verify: check the file's sha256 against ``data/MANIFEST`` first.
        dtype: parameter dtype of the returned model.
    """
    _check_size(size)
    path = artifacts.tinygpt_checkpoint_path(size)
    if verify:
        artifacts.verify(path)
    elif not path.exists():
        raise FileNotFoundError(f"{path} is missing; build it with `python -m sparsity_core.assets build tinygpt`")
    with safe_open(str(path), framework="pt") as f:
        config = TinyGPTConfig(**json.loads(f.metadata()["config"]))
    # the weights are overwritten below; the modules' default init draws from the global RNG,
    # so build them with that state saved and restored: loading a model never advances the
    # RNG a chapter has seeded
    with torch.random.fork_rng(devices=[]):
        model = TinyGPT(config, generator=torch.Generator().manual_seed(0))
    state = {k: v.to(dtype) for k, v in load_file(str(path)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RuntimeError(f"checkpoint does not match TinyGPT: missing {missing}, unexpected {unexpected}")
    model.lm_head.weight = model.wte.weight  # re-tie (load_state_dict copies into wte only)
    return model.to(dtype).eval()


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES} (got {size!r})")
