"""The book's models: an MLP, two small convnets, and TinyGPT with swappable parts.

Every model is a plain ``nn.Module``; chapters prune, mask and re-wire them from outside
(``torch.nn.utils.parametrize``, forward hooks, the ``attention``/``ffn`` factories of
:class:`TinyGPT`), never by editing this package. :func:`block_list` finds the transformer
blocks of TinyGPT and of Hugging Face Llama / BERT models, for code that walks a model
block by block.
"""
from .blocks import block_list
from .cnn import CNN1d, CNN2d
from .hooks import HookPoint
from .mlp import MLP, num_params, reset_parameters_
from .tinygpt import (
    TINYGPT_PRESETS,
    Block,
    BlockOutput,
    CausalSelfAttention,
    FeedForward,
    GPTOutput,
    TinyGPT,
    TinyGPTConfig,
    capture,
    hook_points,
    tinygpt_medium,
    tinygpt_small,
    train_flops_per_token,
)

__all__ = [
    "MLP", "CNN1d", "CNN2d", "num_params", "reset_parameters_",
    "TinyGPTConfig", "tinygpt_small", "tinygpt_medium", "TINYGPT_PRESETS", "train_flops_per_token",
    "TinyGPT", "Block", "BlockOutput", "GPTOutput", "CausalSelfAttention", "FeedForward",
    "capture", "hook_points", "HookPoint", "block_list",
]
