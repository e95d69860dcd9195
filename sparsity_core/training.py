"""One model-agnostic training loop, :func:`fit`, and the losses and metric chapters share.

Every chapter trains through :func:`fit`: dense baselines, pruning with fine-tuning
(a callback re-applies the masks after each optimizer step), dynamic sparse training (a
callback updates the masks every Delta T steps, with that step's gradients still in
``.grad``), mixture-of-experts (the loss adds the model's auxiliary losses).

Determinism: ``fit`` draws no random numbers itself. Batches come from the caller
(a function of the step index is the simplest deterministic source); dropout uses the
global RNG, which ``sparsity_core.seeding.seed_everything`` fixes. Same seed, same
thread count, same machine: bitwise identical loss curves (tested).

Taught in: Chapter 0, "The bench".
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

__all__ = ["History", "fit", "accuracy", "classification_loss", "lm_loss"]

#: Smoothing of the loss shown on the progress bar (display only; History keeps raw values).
PROGRESS_EMA = 0.9
#: Progress-bar refreshes per run, so the bar costs nothing next to a training step.
PROGRESS_UPDATES = 100

LossFn = Callable[[nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, dict]"]


@dataclass(frozen=True)
class History:
    """What :func:`fit` returns.

    Steps are 0-based: step ``i`` used batch ``batches(i)``, then the optimizer, the
    scheduler and the callbacks ran.

    Attributes:
        steps: number of optimizer steps taken.
        train_loss: loss of each step's batch, before that step's update.
        lr: learning rate of the first parameter group used at each step.
        logs: the extra values ``loss_fn`` returned at each step (and ``grad_norm``, the
            norm before clipping, when ``grad_clip`` is set).
        evals: ``(i, metrics)`` for each evaluation, run after step ``i``.
        seconds: wall-clock seconds of the training steps (evaluations excluded).
        eval_seconds: wall-clock seconds spent in ``eval_fn``.
        items: training examples seen (rows of each batch, see :func:`fit`), or None.
    """

    steps: int
    train_loss: list[float]
    lr: list[float]
    logs: list[dict[str, float]]
    evals: list[tuple[int, dict[str, float]]]
    seconds: float
    eval_seconds: float = 0.0
    items: int | None = None

    @property
    def items_per_second(self) -> float | None:
        """Training throughput in examples per second (None if unknown)."""
        if self.items is None or self.seconds <= 0:
            return None
        return self.items / self.seconds

    @property
    def last_eval(self) -> dict[str, float]:
        """Metrics of the final evaluation ({} if none ran)."""
        return dict(self.evals[-1][1]) if self.evals else {}

    def to_frame(self) -> pd.DataFrame:
        """One row per step: ``step, train_loss, lr``, the ``logs`` keys, and the eval
        metrics on the rows of the steps after which they ran (NaN elsewhere). An eval
        metric whose name clashes with a training column gets the suffix ``_eval``."""
        frame = pd.DataFrame({"step": range(self.steps), "train_loss": self.train_loss, "lr": self.lr})
        if any(self.logs):
            frame = frame.join(pd.DataFrame(self.logs))
        if self.evals:
            evals = pd.DataFrame([{"step": i, **m} for i, m in self.evals])
            evals = evals.rename(columns={c: f"{c}_eval" for c in evals.columns
                                          if c != "step" and c in frame.columns})
            frame = frame.merge(evals, on="step", how="left")
        return frame


def _batch_source(batches: Callable[[int], Any] | Iterable) -> Callable[[int], Any]:
    """Turn a step function or an iterable into ``step -> batch``.

    A re-iterable (list, DataLoader) restarts when it runs out (one pass = one epoch);
    a one-shot iterator that runs out raises.
    """
    if callable(batches) and not hasattr(batches, "__iter__"):
        return batches
    if not hasattr(batches, "__iter__"):
        raise TypeError(f"batches must be a function of the step or an iterable "
                        f"(got {type(batches).__name__})")
    state: dict[str, Iterator] = {"it": iter(batches)}
    one_shot = state["it"] is batches

    def get(step: int):
        try:
            return next(state["it"])
        except StopIteration:
            if one_shot:
                raise ValueError(f"batches ran out after {step} steps; pass a re-iterable "
                                 f"(list, DataLoader) or a function of the step") from None
            state["it"] = iter(batches)
            try:
                return next(state["it"])
            except StopIteration:
                raise ValueError("batches is empty") from None
    return get


def _rows(batch: Any) -> int | None:
    """Rows of the batch's first tensor (the batch size for ``(x, y)`` batches)."""
    first = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    return first.shape[0] if isinstance(first, torch.Tensor) and first.dim() > 0 else None


def _scalar(value: Any) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def fit(model: nn.Module, batches: Callable[[int], Any] | Iterable, *, steps: int,
        optimizer: torch.optim.Optimizer, loss_fn: LossFn,
        eval_fn: Callable[[nn.Module], dict[str, float]] | None = None, eval_every: int = 0,
        scheduler: Any = None, grad_clip: float | None = None, progress: bool = True,
        callbacks: Sequence[Callable[[int, nn.Module], None]] = (),
        count_items: Callable[[Any], int] | None = None, desc: str | None = None) -> History:
    """Train ``model`` for ``steps`` optimizer steps.

    Each step ``i``: ``model.train()``; ``batch = batches(i)`` (or the next item);
    zero the gradients; ``loss_fn(model, batch)``; backward; clip (if ``grad_clip``);
    ``optimizer.step()``; ``scheduler.step()`` (if given, once per step); each
    ``callback(i, model)``; and, every ``eval_every`` steps and after the last one,
    ``eval_fn(model)`` in eval mode under ``torch.no_grad()``.

    Args:
        model: any module.
        batches: ``step -> batch``, or an iterable of batches (re-iterated when exhausted).
        steps: optimizer steps (>= 1).
        optimizer: a ``torch.optim`` optimizer over the model's parameters.
        loss_fn: ``(model, batch) -> loss`` or ``(loss, logs)``, with ``loss`` a scalar
            tensor and ``logs`` a dict of numbers recorded per step (e.g. aux losses).
        eval_fn: ``model -> {metric: value}``; without ``eval_every`` it runs once at the end.
        eval_every: evaluate after every ``eval_every``-th step (0: only at the end).
        scheduler: anything with ``step()``, stepped after each optimizer step.
        grad_clip: clip the global gradient norm to this value (> 0).
        progress: show a tqdm bar with the smoothed loss.
        callbacks: ``(i, model) -> None`` after each update, in order; gradients of step
            ``i`` are still in ``.grad`` (re-apply or update masks here).
        count_items: ``batch -> examples`` for the throughput; default: rows of the
            batch's first tensor (sequences, not tokens, for a language model).
        desc: label of the progress bar.

    Returns:
        A :class:`History`. The model's train/eval mode is restored on return.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the step is reported).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1 (got steps={steps!r})")
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0:
        raise ValueError(f"eval_every must be an int >= 0 (got eval_every={eval_every!r})")
    if eval_every and eval_fn is None:
        raise ValueError("eval_every is set but eval_fn is None")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be None or > 0 (got grad_clip={grad_clip})")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be a callable (model, batch) -> loss")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer (got {type(optimizer).__name__})")
    callbacks = tuple(callbacks)
    get_batch = _batch_source(batches)
    count = count_items or _rows

    was_training = model.training
    train_loss: list[float] = []
    lrs: list[float] = []
    logs: list[dict[str, float]] = []
    evals: list[tuple[int, dict[str, float]]] = []
    items: int | None = 0
    seconds = eval_seconds = 0.0
    smooth = math.nan
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    refresh = max(1, steps // PROGRESS_UPDATES)
    try:
        for i in bar:
            start = time.perf_counter()
            model.train()
            batch = get_batch(i)
            lrs.append(float(optimizer.param_groups[0]["lr"]))
            optimizer.zero_grad(set_to_none=True)
            out = loss_fn(model, batch)
            loss, extra = out if isinstance(out, tuple) and len(out) == 2 else (out, {})
            if not isinstance(extra, dict):
                raise TypeError(f"loss_fn's logs must be a dict (got {type(extra).__name__})")
            if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                raise TypeError(f"loss_fn must return a scalar tensor (got {type(loss).__name__}"
                                f"{'' if not isinstance(loss, torch.Tensor) else tuple(loss.shape)})")
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"loss is {value} at step {i}")
            loss.backward()
            record = {k: _scalar(v) for k, v in extra.items()}
            if grad_clip is not None:
                record["grad_norm"] = float(nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            for callback in callbacks:
                callback(i, model)
            seconds += time.perf_counter() - start
            n = count(batch) if items is not None else None
            items = None if n is None else items + n
            train_loss.append(value)
            logs.append(record)
            smooth = value if math.isnan(smooth) else PROGRESS_EMA * smooth + (1 - PROGRESS_EMA) * value
            if progress and (i % refresh == 0 or i == steps - 1):
                bar.set_postfix(loss=f"{smooth:.4f}", refresh=False)
            if eval_fn is not None and ((eval_every and (i + 1) % eval_every == 0) or i == steps - 1):
                start = time.perf_counter()
                evals.append((i, _evaluate(model, eval_fn)))
                eval_seconds += time.perf_counter() - start
    finally:
        bar.close()
        model.train(was_training)
    return History(steps=steps, train_loss=train_loss, lr=lrs, logs=logs, evals=evals,
                   seconds=seconds, eval_seconds=eval_seconds, items=items)


def _evaluate(model: nn.Module, eval_fn: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        metrics = eval_fn(model)
    if not isinstance(metrics, dict):
        raise TypeError(f"eval_fn must return a dict of metrics (got {type(metrics).__name__})")
    return {k: _scalar(v) for k, v in metrics.items()}


def classification_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of ``model(x)`` (logits ``(B, K)``) against labels ``y`` ``(B,)``."""
    x, y = batch
    return F.cross_entropy(model(x), y)


def lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Next-token loss of a :class:`~sparsity_core.models.TinyGPT` plus its auxiliary losses.

    Args:
        model: returns a ``GPTOutput`` from ``model(idx, targets)``.
        batch: ``(idx, targets)``, both ``(B, T)`` int64.

    Returns:
        ``(loss, logs)``: ``loss = output.loss + sum(output.aux.values())`` (each aux loss
        arrives already scaled by the coefficient of the module that made it), and
        ``logs = {"lm_loss": ..., **aux}`` as floats.
    """
    idx, targets = batch
    out = model(idx, targets)
    total = out.loss
    for value in out.aux.values():
        total = total + value
    return total, {"lm_loss": out.loss.item(), **{k: _scalar(v) for k, v in out.aux.items()}}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of rows of ``x`` whose arg-max logit equals ``y``, in eval mode.

    Args:
        model: maps ``(b, *)`` to logits ``(b, K)``.
        x: inputs ``(N, *)``.
        y: labels ``(N,)``.
        batch_size: rows per forward pass (>= 1).

    The model's train/eval mode is restored on return.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows (got {x.shape[0]} and {y.shape[0]})")
    if x.shape[0] == 0:
        raise ValueError("x is empty")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1 (got batch_size={batch_size!r})")
    was_training = model.training
    model.eval()
    try:
        correct = sum(int((model(xb).argmax(dim=-1) == yb).sum())
                      for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    finally:
        model.train(was_training)
    return correct / x.shape[0]
