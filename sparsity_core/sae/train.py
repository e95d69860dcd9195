r"""Training and evaluating sparse autoencoders on a tensor of cached activations.

:func:`train_sae` runs the bench's :func:`sparsity_core.training.fit` (Adam, a progress bar,
per-step logs of the loss terms, L0 and the dead share). Each step is the SAE's
:meth:`~sparsity_core.sae.base.SAE.training_step` (the one place its statistics change); an
optimizer step pre-hook removes the decoder gradient's component along each column
(:meth:`~sparsity_core.sae.base.SAE.project_decoder_grad_`) and a callback renormalises the
columns after the step (:meth:`~sparsity_core.sae.base.SAE.post_step`). The hook belongs to
this run's optimizer, not to the module, so a copied SAE trains exactly as the original. Batches are
drawn without replacement from a shuffled order, reshuffled each epoch. :func:`evaluate_sae`
measures :mod:`sparsity_core.sae.metrics` on held-out rows in eval mode.

Taught in: Chapter 7, "Sparse autoencoders".
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import checks
from ..training import History, fit
from . import metrics
from .base import SAE

__all__ = ["shuffled_batches", "train_sae", "sae_step_loss", "evaluate_sae", "encode_all"]


def shuffled_batches(x: Tensor, batch_size: int, generator: torch.Generator):
    """``step -> (batch_size, d)`` rows of ``x (N, d)``: epochs of a fresh permutation each."""
    checks.integer(batch_size, "batch_size", lo=1, hi=len(x))
    per_epoch = len(x) // batch_size
    state = {"epoch": -1, "perm": None}

    def get(step: int) -> Tensor:
        epoch, i = divmod(step, per_epoch)
        if epoch != state["epoch"]:
            state["epoch"], state["perm"] = epoch, torch.randperm(len(x), generator=generator)
        return x[state["perm"][i * batch_size:(i + 1) * batch_size]]
    return get


def train_sae(sae: SAE, x: Tensor, *, steps: int, batch_size: int = 1024, lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999), generator: torch.Generator,
              init_b_dec: bool = True, grad_clip: float | None = None, progress: bool = True) -> History:
    """Train ``sae`` on rows of ``x (N, d_in)`` for ``steps`` Adam steps.

    Args:
        sae: any :class:`~sparsity_core.sae.model.SAE`.
        x: ``(N, d_in)`` training activations (normalised: see :func:`.data.normalise`).
        steps, batch_size, lr, betas: the optimiser's budget (Gao's code uses Adam, lr 1e-4 at
            their scale; our shorter runs use a larger step, stated by each caller).
        generator: shuffles the rows.
        init_b_dec: first set ``b_dec`` to the geometric median of up to 4,096 rows (gao2024scaling).
        grad_clip: optional global gradient-norm clip.

    Returns:
        The :class:`~sparsity_core.training.History`; its ``logs`` hold per-step ``mse``,
        ``l0``, ``dead`` (share of latents silent for ``sae.dead_tokens`` tokens) and the
        variant's extra terms; ``items_per_second`` is tokens per second.
    """
    if not isinstance(sae, SAE):
        raise TypeError(f"sae must be an SAE (got {type(sae).__name__})")
    sae.check_input(x)
    if init_b_dec:
        sae.init_b_dec(x[torch.randperm(len(x), generator=generator)[:4096]])
    opt = torch.optim.Adam(sae.parameters(), lr=lr, betas=betas)
    opt.register_step_pre_hook(lambda optimizer, args, kwargs: sae.project_decoder_grad_())
    return fit(sae, shuffled_batches(x, batch_size, generator), steps=steps, optimizer=opt,
               loss_fn=sae_step_loss, grad_clip=grad_clip, progress=progress,
               callbacks=[lambda i, model: model.post_step()], desc=f"{sae.kind} SAE")


def sae_step_loss(sae: SAE, batch: Tensor) -> tuple[Tensor, dict[str, float]]:
    """``fit``'s loss function for an SAE: ``(loss, logs)`` of :meth:`~.base.SAE.training_step`."""
    out = sae.training_step(batch)
    return out.loss, out.logs()


@torch.no_grad()
def encode_all(sae: SAE, x: Tensor, batch_size: int = 8192, **encode_kw) -> tuple[Tensor, Tensor]:
    """``(x_hat (N, d), f (N, n))`` of ``sae`` in eval mode, in chunks of ``batch_size`` rows."""
    was = sae.training
    sae.eval()
    try:
        fs = [sae.encode(chunk, **encode_kw) for chunk in x.split(batch_size)]
    finally:
        sae.train(was)
    f = torch.cat(fs)
    return sae.decode(f), f


def evaluate_sae(sae: SAE, x: Tensor, **encode_kw) -> dict[str, float]:
    """FVU, L0, dead share (never firing on these rows), shrinkage of ``sae`` on ``x (N, d)``."""
    x_hat, f = encode_all(sae, x, **encode_kw)
    return {"fvu": metrics.fvu(x, x_hat), "l0": metrics.l0(f), "dead": metrics.dead_fraction(f),
            "shrinkage": metrics.shrinkage(x, x_hat)}
