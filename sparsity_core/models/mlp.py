"""A multilayer perceptron, and the two helpers every model here shares.

Dimension letters: B batch, D_in flattened input features, D_out outputs.

Taught in: Chapter 0, "The bench"; pruned in Chapter 2, sparsely trained in Chapter 4.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable, Sequence

import torch
from torch import nn

from .. import checks

__all__ = ["MLP", "num_params", "reset_parameters_"]


class MLP(nn.Sequential):
    """Fully connected ReLU network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    The input is flattened first, so images and sequences go in unchanged. Layers are
    named ``flatten, fc1, act1, fc2, act2, ..., fcL`` (no activation after the last), so a
    pruning table reads ``fc1, fc2, ...``.

    Args:
        sizes: ``[D_in, hidden..., D_out]``, at least two positive ints.
        activation: a zero-argument callable returning a module (a class such as
            ``nn.ReLU`` or ``nn.GELU``); called once per hidden layer.
        bias: whether the linear layers have biases.
        generator: if given, re-initialise every layer from it (PyTorch's default scheme),
            so the initial weights depend on this generator alone.

    Shapes: ``(B, *) -> (B, D_out)`` with ``prod(*) == D_in``.
    """

    def __init__(self, sizes: Sequence[int], activation: Callable[[], nn.Module] = nn.ReLU,
                 bias: bool = True, *, generator: torch.Generator | None = None):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output size (got {sizes})")
        for i, size in enumerate(sizes):
            checks.positive_int(size, f"sizes[{i}]")
        if isinstance(activation, nn.Module) or not callable(activation):
            raise TypeError(f"activation must be a callable returning an nn.Module, e.g. the class "
                            f"nn.ReLU, not an instance (got {activation!r})")
        checks.generator(generator)
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            layers[f"fc{i}"] = nn.Linear(d_in, d_out, bias=bias)
            if i < len(sizes) - 1:
                act = activation()
                if not isinstance(act, nn.Module):
                    raise TypeError(f"activation() must return an nn.Module (got {type(act).__name__})")
                layers[f"act{i}"] = act
        super().__init__(layers)
        self.sizes = tuple(sizes)
        if generator is not None:
            reset_parameters_(self, generator)


def reset_parameters_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-initialise every ``nn.Linear`` and ``nn.Conv{1,2}d`` in ``model`` from ``generator``.

    Same distribution as PyTorch's own ``reset_parameters`` (Kaiming-uniform weights with
    ``a = sqrt(5)``, biases uniform in ``+-1/sqrt(fan_in)``), but drawn from an explicit
    generator instead of the global RNG, so a model's initial weights are a function of
    the seed passed in. Other modules are left as they are. Returns ``model``.
    """
    checks.generator(generator)
    if generator is None:
        raise TypeError("generator must be a torch.Generator (got None)")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    fan_in = module.weight[0].numel()
                    bound = 1 / math.sqrt(fan_in)
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)
    return model


def num_params(model: nn.Module, non_embedding: bool = True) -> int:
    """Number of distinct parameters of ``model`` (a tied weight counts once).

    Args:
        model: any module.
        non_embedding: leave out the parameters of every ``nn.Embedding`` (token and
            position tables, and hence a language-model head tied to the token table).

    Notes:
        ``non_embedding=True`` is the "non-embedding parameter count" N of Kaplan et al.
        (kaplan2020scaling), the N of scaling laws. nanoGPT's ``get_num_params`` removes
        only the position table and keeps the tied token table; ours removes both.
    """
    seen = {id(p): p for p in model.parameters()}
    if non_embedding:
        for module in model.modules():
            if isinstance(module, nn.Embedding):
                for p in module.parameters(recurse=False):
                    seen.pop(id(p), None)
    return sum(p.numel() for p in seen.values())
