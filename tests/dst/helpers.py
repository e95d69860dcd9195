"""Small masked models and batches shared by the DST tests."""
import torch
from torch import nn

from sparsity_core.allocation import layer_shapes
from sparsity_core.dst import constant_fan_in_mask
from sparsity_core.masks import apply_masks, current_masks, random_mask
from sparsity_core.models import MLP
from sparsity_core.training import classification_loss

SIZES = (8, 24, 16, 4)


def masked_mlp(density=0.3, seed=0, sizes=SIZES, constant_fan_in=False):
    g = torch.Generator().manual_seed(seed)
    model = MLP(list(sizes), generator=g)
    make = constant_fan_in_mask if constant_fan_in else random_mask
    apply_masks(model, {name: make(shape, density, generator=g)
                        for name, shape in layer_shapes(model).items()})
    return model


def batches(seed=0, n=96, rows=16, d_in=SIZES[0], classes=SIZES[-1]):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return lambda i: (x[(i * rows) % n:(i * rows) % n + rows], y[(i * rows) % n:(i * rows) % n + rows])


def train_step(model, optimizer, batch):
    optimizer.zero_grad(set_to_none=True)
    classification_loss(model, batch).backward()
    optimizer.step()


class Holder(nn.Module):
    """One bias-free linear layer whose loss is ``sum(W * G)``, so dL/dW = G exactly."""

    def __init__(self, weight):
        super().__init__()
        self.lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(weight)

    def backward_with(self, grad):
        (self.lin.weight * grad).sum().backward()


def unmasked_twin(model, sizes=SIZES):
    """A plain MLP holding ``model``'s effective weights. (``copy.deepcopy`` plus
    ``remove_masks`` would not do: the copy shares the parametrized class with the original,
    and removing the parametrization from one deletes the property from both.)"""
    twin = MLP(list(sizes))
    with torch.no_grad():
        for name, module in twin.named_modules():
            if isinstance(module, nn.Linear):
                source = model.get_submodule(name)
                module.weight.copy_(source.weight)
                module.bias.copy_(source.bias)
    return twin


def train_with_updates(model, optimizer, updater, steps, seed=0):
    """Train ``steps`` steps, calling ``updater.step`` after each; yield
    ``(step, masks before, the step's MaskUpdate or None, masks after)``."""
    get = batches(seed)
    for i in range(steps):
        before = current_masks(model)
        train_step(model, optimizer, get(i))
        update = updater.step(i)
        yield i, before, update, current_masks(model)
