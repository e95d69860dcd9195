"""One SAE run of a chapter's sweep: build, train, score on held-out rows, as one table row.

Chapter 7 compares SAE variants point by point on the (L0, FVU) plane (gao2024scaling, Sec. 2;
rajamanoharan2024improving; rajamanoharan2024jumping; bussmann2024batchtopk): every point is
the same three steps, :func:`~sparsity_core.sae.model.make_sae`,
:func:`~sparsity_core.sae.train.train_sae` and :func:`~sparsity_core.sae.train.evaluate_sae`,
with the weights and the batch order drawn from generators seeded ``seed + 1`` and ``seed + 2``.
:func:`train_and_evaluate` is those steps, so both parts of the chapter run their sweeps the
same way.

Not imported by :mod:`sparsity_core.sae`'s ``__init__``: import it as
``from sparsity_core.sae.experiments import train_and_evaluate``.

Taught in: Chapter 7, "Sparse autoencoders" (parts 1 and 2).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import checks
from ..training import History
from .base import SAE
from .metrics import mmcs
from .model import make_sae
from .train import evaluate_sae, train_sae

__all__ = ["ROW_HYPERPARAMETERS", "train_and_evaluate"]

#: Keyword arguments of :func:`~sparsity_core.sae.model.make_sae` copied into the result row: they
#: name a point of a sweep (TopK's ``k``, the L1 and L0 penalty weights).
ROW_HYPERPARAMETERS = ("k", "l1_coeff", "l0_coeff")


def train_and_evaluate(kind: str, x_train: Tensor, x_test: Tensor, width: int, steps: int, *, batch_size: int,
                       lr: float, seed: int, features: Tensor | None = None,
                       **kw) -> tuple[SAE, History, dict[str, float | str]]:
    """Train one SAE of ``kind`` on ``x_train`` and score it on ``x_test``.

    Args:
        kind: an SAE name for :func:`~sparsity_core.sae.model.make_sae`.
        x_train: ``(N, d)`` normalised training activations; x_test: ``(M, d)`` held-out ones.
        width: the number of latents ``n``.
        steps: Adam steps of :func:`~sparsity_core.sae.train.train_sae`.
        batch_size: rows per step (capped at ``N``).
        lr: Adam's step size.
        seed: the weights come from ``Generator().manual_seed(seed + 1)``, the batch order from
            ``seed + 2``.
        features: optional ``(m, d)`` true feature directions: the row then holds their MMCS
            (sharkey2022taking) with the decoder.
        **kw: passed to :func:`~sparsity_core.sae.model.make_sae` (``k``, ``l1_coeff``, ...).

    Returns:
        ``(model, history, row)``: the trained SAE, its training
        :class:`~sparsity_core.training.History`, and a row with ``kind``, the
        :data:`ROW_HYPERPARAMETERS` given in ``kw``, the held-out ``fvu``, ``l0``, ``dead`` and
        ``shrinkage`` of :func:`~sparsity_core.sae.train.evaluate_sae`, ``tokens/s`` (training
        throughput) and, with ``features``, ``mmcs``.

    Raises:
        ValueError: a non-positive ``width``, ``steps`` or ``batch_size``, ``x_train`` and
            ``x_test`` of different widths, or ``features`` of another width.
    """
    checks.positive_int(width, "width")
    checks.positive_int(steps, "steps")
    checks.positive_int(batch_size, "batch_size")
    if not isinstance(x_train, Tensor) or not isinstance(x_test, Tensor) or x_train.dim() != 2 \
            or x_test.dim() != 2 or x_train.shape[1] != x_test.shape[1]:
        raise ValueError("x_train and x_test must be (N, d) and (M, d) tensors of the same width d")
    if features is not None and (features.dim() != 2 or features.shape[1] != x_train.shape[1]):
        raise ValueError(f"features must be (m, d={x_train.shape[1]}) (got {tuple(features.shape)})")
    model = make_sae(kind, x_train.shape[1], width, generator=torch.Generator().manual_seed(seed + 1), **kw)
    hist = train_sae(model, x_train, steps=steps, batch_size=min(batch_size, len(x_train)), lr=lr,
                     generator=torch.Generator().manual_seed(seed + 2), progress=False)
    row = {"kind": kind, **{k: v for k, v in kw.items() if k in ROW_HYPERPARAMETERS},
           **evaluate_sae(model, x_test), "tokens/s": hist.items_per_second}
    if features is not None:
        row["mmcs"] = mmcs(features, model.W_dec.detach())
    return model, hist, row
