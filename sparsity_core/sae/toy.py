r"""The toy model of superposition (elhage2022toy; targets 6.1 and E7).

``n`` features, each zero with probability ``S`` (the feature *sparsity*) and otherwise
:math:`U[0, 1]`, pass through a bottleneck of ``m < n`` dimensions and back:

.. math::
    h = W x, \qquad x' = \mathrm{ReLU}(W^\top h + b) \;\;(\text{or } W^\top h + b), \qquad
    L = E \sum_i I_i (x_i - x'_i)^2,

with importances :math:`I_i` (the paper: :math:`0.7^i`). Feature ``i`` is *represented* when
its column :math:`W_i` has norm > 0.5; its *superposition* with the others is
:math:`\sum_{j \ne i} (\hat W_i \cdot W_j)^2`. Several models (one per sparsity, or per
seed) train at once as a batch of *instances*, as in the paper's notebook.

Taught in: Chapter 7, "Sparse autoencoders".
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .. import checks
from ..training import fit

__all__ = ["ToyModel", "ToyModels", "train_toy_models", "features_represented", "superposition"]

#: elhage2022toy: feature i has importance 0.7 ** i.
IMPORTANCE_DECAY = 0.7
#: elhage2022toy / targets 6.1: a feature counts as represented when ||W_i|| > 0.5.
REPRESENTED_NORM = 0.5


@dataclass
class ToyModels:
    """Trained toy models, one per instance.

    Attributes:
        W: ``(I, m, n)`` embeddings (column ``i`` of instance ``a`` is feature ``i``'s direction).
        b: ``(I, n)`` output biases.
        sparsity: ``(I,)`` the feature sparsity ``S`` each instance was trained at.
        relu: whether the output has the ReLU.
        final_loss: ``(I,)`` the last steps' mean importance-weighted loss.
    """

    W: Tensor
    b: Tensor
    sparsity: Tensor
    relu: bool
    final_loss: Tensor


class ToyModel(nn.Module):
    """A batch of ``I`` toy models: ``x (B, I, n) -> x' (B, I, n)`` through ``W (I, m, n)``.

    Args:
        W: ``(I, m, n)`` initial embeddings; ``b`` starts at zero ``(I, n)``.
        relu: ReLU output (the paper's nonlinear model) or linear.
    """

    def __init__(self, W: Tensor, relu: bool):
        super().__init__()
        self.W = nn.Parameter(W)
        self.b = nn.Parameter(torch.zeros(W.shape[0], W.shape[2]))
        self.relu = bool(relu)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.einsum("bin,imn->bim", x, self.W)
        out = torch.einsum("bim,imn->bin", h, self.W) + self.b
        return torch.relu(out) if self.relu else out


def train_toy_models(sparsities: Sequence[float], n_features: int = 20, d_hidden: int = 5, *, relu: bool = True,
                     importance_decay: float = IMPORTANCE_DECAY, steps: int = 3000, batch_size: int = 1024,
                     lr: float = 1e-3, generator: torch.Generator, progress: bool = True) -> ToyModels:
    """Train one toy model per sparsity in ``sparsities`` (all at once, AdamW as the paper's notebook).

    The loop is the bench's :func:`~sparsity_core.training.fit`: each step draws a fresh batch
    (``batch_size`` rows per instance, features ``U[0, 1]`` kept with probability ``1 - S``)
    and minimises the sum over instances of the importance-weighted squared error.

    Args:
        sparsities: ``S`` values in [0, 1).
        n_features, d_hidden: ``n`` and ``m`` (the paper: 20 and 5).
        relu: ReLU output (the paper's nonlinear model) or linear.
        importance_decay: :math:`I_i = \\text{decay}^i`.
        steps, batch_size, lr: training budget.
        generator: draws the initial weights and the data.
    """
    S = torch.tensor([float(s) for s in sparsities])
    if S.numel() == 0 or not ((S >= 0) & (S < 1)).all():
        raise ValueError(f"sparsities must be a non-empty list of numbers in [0, 1) (got {list(sparsities)})")
    if not (0 < d_hidden < n_features):
        raise ValueError(f"need 0 < d_hidden < n_features (got {d_hidden}, {n_features})")
    steps = checks.positive_int(steps, "steps")
    batch_size = checks.positive_int(batch_size, "batch_size")
    I = len(S)
    importance = importance_decay ** torch.arange(n_features, dtype=torch.float32)           # (n,)
    W = torch.empty(I, d_hidden, n_features)
    for a in range(I):                       # Xavier-normal per instance, as the notebook
        torch.nn.init.xavier_normal_(W[a], generator=generator)
    model = ToyModel(W, relu)

    def batch(step: int) -> Tensor:
        x = torch.rand(batch_size, I, n_features, generator=generator)
        return x * (torch.rand(batch_size, I, n_features, generator=generator) >= S[None, :, None])

    def loss_fn(model: ToyModel, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        per_instance = (importance * (x - model(x)).pow(2)).sum(-1).mean(0)                  # (I,)
        return per_instance.sum(), {f"loss_{a}": per_instance[a] for a in range(I)}

    hist = fit(model, batch, steps=steps, optimizer=torch.optim.AdamW(model.parameters(), lr=lr),
               loss_fn=loss_fn, progress=progress, desc=f"toy models ({'ReLU' if relu else 'linear'})")
    tail = torch.tensor([[row[f"loss_{a}"] for a in range(I)] for row in hist.logs[-max(1, steps // 20):]])
    return ToyModels(W=model.W.detach(), b=model.b.detach(), sparsity=S, relu=relu, final_loss=tail.mean(0))


def features_represented(W: Tensor, threshold: float = REPRESENTED_NORM) -> Tensor:
    """``(I,)`` features per instance whose column norm exceeds ``threshold``; ``W (I, m, n)`` or ``(m, n)``."""
    W = W[None] if W.dim() == 2 else W
    return (W.norm(dim=1) > threshold).sum(1)


def superposition(W: Tensor) -> Tensor:
    r"""``(I, n)``: :math:`\sum_{j\ne i} (\hat W_i \cdot W_j)^2` per feature; ``W (I, m, n)`` or ``(m, n)``."""
    W = W[None] if W.dim() == 2 else W
    unit = W / W.norm(dim=1, keepdim=True).clamp_min(1e-12)
    dots = torch.einsum("imn,imk->ink", unit, W).pow(2)                                      # (I, n, n)
    return dots.sum(-1) - dots.diagonal(dim1=1, dim2=2)
