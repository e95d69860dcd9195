"""A classifier with one MoE layer, its training run and its routing statistics (Chapter 5, part 1).

The cheap substrate of Chapter 5: an image or signal classifier whose hidden layer is a
residual mixture-of-experts FFN, ``h = W_in x``; ``h <- h + MoE(LN(h))``;
``logits = W_out LN(h)``. It is not causal, so routing jointly over the batch (expert choice,
zhou2022mixture) is legal here; the ``B`` examples of a batch are the ``N`` tokens routed
together, and the capacity of a Switch router is a share of them (fedus2022switch Eq. 3).

* :class:`MoEClassifier`: the model, returning ``BlockOutput(logits, aux)``.
* :func:`routing_stats`: the quantities of shazeer2017outrageously Table 6 (CV of
  importance and of load, max/mean load) and Switch's dropped fraction, for one routing.
* :func:`train_moe_classifier`: one seeded run (Adam, batches drawn with replacement) with
  validation accuracy and routing statistics every ``eval_every`` steps, tested at the end.

Not imported by ``sparsity_core.moe`` (it needs the training loop):
``from sparsity_core.moe.classifier import train_moe_classifier``.

Taught in: Chapter 5, "Mixture-of-experts".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..models.tinygpt import BlockOutput
from ..training import fit
from .layer import MoEConfig, MoEFFN
from .losses import cv_squared, importance
from .routing import Routing, dropped_fraction, expert_counts, unrouted_fraction

__all__ = ["MoEClassifier", "routing_stats", "concat_routings", "ClassifierRun", "train_moe_classifier",
           "ADAM_LR", "BATCH_SIZE"]

#: Adam's learning rate and the batch (= tokens routed together) of the book's runs: a
#: common default for small MLPs on MNIST; no paper fixes them at this scale.
ADAM_LR = 3e-3
BATCH_SIZE = 256
#: Offset that derives the batch-order generator from the seed (any fixed value).
_BATCH_STREAM = 1_000_003


class MoEClassifier(nn.Module):
    """``x (B, D_in) -> BlockOutput(logits (B, classes), aux)`` with one residual MoE layer.

    Args:
        d_in: input features.
        n_classes: outputs.
        config: the MoE layer (:class:`~sparsity_core.moe.layer.MoEConfig`); its ``d_hidden``
            (or ``d_hidden`` here) is each expert's hidden width H.
        width: C, the residual width the experts read and write.
        d_hidden: H when ``config.d_hidden`` is None.
        generator: draws every initial weight (PyTorch's default schemes; the router's own).

    With one expert and a ``"topk"`` router (weight ``softmax`` of one logit = 1) it is the
    dense residual MLP ``h + FFN(LN(h))``: the dense baseline of equal active FLOPs.
    """

    def __init__(self, d_in: int, n_classes: int, config: MoEConfig, *, width: int = 64,
                 d_hidden: int = 128, generator: torch.Generator | None = None):
        super().__init__()
        d_in, n_classes = checks.positive_int(d_in, "d_in"), checks.positive_int(n_classes, "n_classes")
        width = checks.positive_int(width, "width")
        checks.generator(generator)
        self.inp = nn.Linear(d_in, width)
        self.ln = nn.LayerNorm(width)
        self.moe = MoEFFN.from_config(config, width, d_hidden, generator=generator)
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, n_classes)
        if generator is not None:
            for layer in (self.inp, self.head):  # nn.Linear's default scheme, from the generator
                bound = layer.in_features ** -0.5
                with torch.no_grad():
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.uniform_(-bound, bound, generator=generator)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` the residual stream ``W_in x`` of ``x (B, D_in)``."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.inp.in_features:
            raise ValueError(f"x must have shape (B, {self.inp.in_features})")
        return self.inp(x)

    def route(self, x: torch.Tensor) -> Routing:
        """The MoE layer's routing of the ``B`` examples of ``x (B, D_in)``."""
        return self.moe.route(self.ln(self.embed(x)))

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> BlockOutput:
        """``BlockOutput(logits (B, classes), aux)``; ``generator`` draws the router noise."""
        h = self.embed(x)                                                    # (B, C)
        y = self.moe(self.ln(h), generator=generator)
        return BlockOutput(self.head(self.ln_f(h + y.out)), y.aux)

    def logits_and_routing(self, x: torch.Tensor) -> tuple[torch.Tensor, Routing]:
        """``(logits (B, classes), routing)`` from one routing of ``x (B, D_in)`` (no noise is
        drawn: for evaluation)."""
        h = self.embed(x)
        z = self.ln(h)
        routing = self.moe.route(z)
        return self.head(self.ln_f(h + self.moe.mix(z, routing))), routing


def concat_routings(routings: list[Routing]) -> Routing:
    """One :class:`Routing` of the tokens of several routings (same E and K), in order."""
    if not routings:
        raise ValueError("routings must not be empty")
    first = routings[0]
    if any(r.num_experts != first.num_experts or r.k != first.k for r in routings):
        raise ValueError("all routings must have the same number of experts and slots per token")

    def cat(name: str) -> torch.Tensor | None:
        parts = [getattr(r, name) for r in routings]
        if any(p is None for p in parts):
            return None
        return torch.cat(parts)
    return Routing(experts=cat("experts"), weights=cat("weights"), kept=cat("kept"), dropped=cat("dropped"),
                   num_experts=first.num_experts, logits=cat("logits"), noisy_logits=cat("noisy_logits"),
                   noise_std=cat("noise_std"))


def routing_stats(routing: Routing) -> dict[str, float]:
    """The balance of one routing, as shazeer2017outrageously Table 6 and fedus2022switch report it.

    Returns a dict with
    ``cv_importance``: CV (std / mean, population std) of :math:`\\mathrm{Importance}_i = \\sum_x G(x)_i`,
    the square root of :func:`~sparsity_core.moe.losses.cv_squared`;
    ``cv_load``: CV of the realised load, the slots each expert runs (:func:`expert_counts`);
    ``max_mean_load``: max / mean of that load;
    ``dropped``: :func:`~sparsity_core.moe.routing.dropped_fraction`;
    ``unrouted``: :func:`~sparsity_core.moe.routing.unrouted_fraction`.
    """
    if not isinstance(routing, Routing):
        raise TypeError(f"routing must be a Routing (got {type(routing).__name__})")
    load = expert_counts(routing).double()
    return {"cv_importance": float(cv_squared(importance(routing).detach().double()).sqrt()),
            "cv_load": float(cv_squared(load).sqrt()),
            "max_mean_load": float(load.max() / load.mean()) if float(load.mean()) > 0 else float("nan"),
            "dropped": dropped_fraction(routing), "unrouted": unrouted_fraction(routing)}


@torch.no_grad()
def _evaluate(model: MoEClassifier, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, counts: bool = False):
    """Accuracy, mean cross-entropy and :func:`routing_stats` of ``model`` in eval mode, the
    rows of ``x`` routed in consecutive batches of ``batch_size`` (the training batch); with
    ``counts`` also the ``(E,)`` kept slots per expert."""
    was = model.training
    model.eval()
    correct, loss, routings = 0, 0.0, []
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        logits, routing = model.logits_and_routing(xb)
        correct += int((logits.argmax(1) == yb).sum())
        loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        routings.append(routing)
    model.train(was)
    routing = concat_routings(routings)
    metrics = {"accuracy": correct / x.shape[0], "loss": loss / x.shape[0], **routing_stats(routing)}
    return (metrics, expert_counts(routing)) if counts else metrics


@dataclass(frozen=True)
class ClassifierRun:
    """One :func:`train_moe_classifier` run.

    Attributes:
        config, seed, steps: what was run.
        test: :func:`routing_stats` plus ``accuracy`` and ``loss`` on the test split.
        curve: ``(step, validation metrics)`` after every ``eval_every`` steps (same keys).
        curve_counts: ``(evaluations, E)`` kept slots per expert at each of those evaluations.
        test_counts: ``(E,)`` kept slots per expert on the test split.
        seconds: training time (without the evaluations).
        model: the trained model (eval mode).
    """

    config: MoEConfig
    seed: int
    steps: int
    test: dict[str, float]
    curve: tuple[tuple[int, dict[str, float]], ...]
    curve_counts: torch.Tensor
    test_counts: torch.Tensor
    seconds: float
    model: MoEClassifier

    def steps_to(self, accuracy: float) -> int | None:
        """The first evaluated step whose validation accuracy reaches ``accuracy`` (None: never)."""
        return next((s for s, m in self.curve if m["accuracy"] >= accuracy), None)


def train_moe_classifier(data, config: MoEConfig, *, seed: int, steps: int, eval_every: int = 50, eval_rows: int = 2048,
                         batch_size: int = BATCH_SIZE, lr: float = ADAM_LR, width: int = 64,
                         d_hidden: int = 128) -> ClassifierRun:
    """Train one :class:`MoEClassifier` on ``data`` and test it.

    Args:
        data: an :class:`~sparsity_core.data.ImageData` with flat ``(N, D)`` inputs (train,
            validation and test splits; ``load_mnist(flat=True)``).
        config: the MoE layer.
        seed: fixes the initial weights, the router noise and the batch order; runs with the
            same seed draw the same batches (paired comparisons).
        steps: Adam steps (>= 1), ``batch_size`` rows each, drawn with replacement.
        eval_every: validation metrics every this many steps (0: none), on the first
            ``eval_rows`` validation rows.
        batch_size, lr, width, d_hidden: as :data:`BATCH_SIZE`, :data:`ADAM_LR`, :class:`MoEClassifier`.

    The training loss is the cross-entropy plus every auxiliary loss of the layer (weighted by
    ``config.aux_weights``).
    """
    seed = checks.integer(seed, "seed", lo=0)
    steps = checks.positive_int(steps, "steps")
    eval_every = checks.integer(eval_every, "eval_every", lo=0)
    batch_size = checks.positive_int(batch_size, "batch_size")
    eval_rows = checks.positive_int(eval_rows, "eval_rows")
    x_train, y_train = data.x_train, data.y_train
    if x_train.dim() != 2:
        raise ValueError(f"data must have flat (N, D) inputs (got {tuple(x_train.shape)}): load with flat=True")
    init = torch.Generator().manual_seed(seed)
    model = MoEClassifier(x_train.shape[1], data.n_classes, config, width=width, d_hidden=d_hidden, generator=init)
    noise = torch.Generator().manual_seed(seed)
    batches = torch.Generator().manual_seed(seed + _BATCH_STREAM)

    def batch(step: int):
        idx = torch.randint(0, x_train.shape[0], (batch_size,), generator=batches)
        return x_train[idx], y_train[idx]

    def loss_fn(m: MoEClassifier, b) -> tuple[torch.Tensor, dict[str, float]]:
        out = m(b[0], generator=noise)
        ce = F.cross_entropy(out.out, b[1])
        total = ce + sum(out.aux.values(), torch.zeros((), dtype=ce.dtype))
        return total, {"ce": ce.item()}

    optimizer = torch.optim.Adam(model.parameters(), lr=checks.real(lr, "lr", lo=0.0, closed_low=False),
                                 foreach=True)
    loads: list[torch.Tensor] = []

    def validate(m: MoEClassifier) -> dict[str, float]:
        metrics, counts = _evaluate(m, data.x_val[:eval_rows], data.y_val[:eval_rows], batch_size, counts=True)
        loads.append(counts)
        return metrics

    history = fit(model, batch, steps=steps, optimizer=optimizer, loss_fn=loss_fn, progress=False,
                  eval_fn=validate if eval_every else None, eval_every=eval_every)
    curve = tuple((i + 1, metrics) for i, metrics in history.evals)
    test, counts = _evaluate(model, data.x_test, data.y_test, batch_size, counts=True)
    model.eval()
    return ClassifierRun(config=config, seed=seed, steps=steps, test=test, curve=curve,
                         curve_counts=torch.stack(loads) if loads else torch.zeros(0, config.num_experts,
                                                                                   dtype=torch.long),
                         test_counts=counts, seconds=history.seconds, model=model)
