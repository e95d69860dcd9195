"""Sparsity schedules (how sparse at step t) and the drop-fraction schedule of DST.

Pure functions of the step and explicit arguments, plus two frozen schedule objects
(:class:`CubicSchedule`, :class:`ConstantSchedule`) that a pruner callback consults:
``schedule(step)`` is the target sparsity, ``schedule.is_update_step(step)`` says whether
to prune at that step. Steps are the 0-based optimizer-step indices that
``sparsity_core.training.fit`` passes to its callbacks.

References (keys in ``book/references.bib``): zhu2017prune (cubic schedule, Eq. 1),
evci2020rigging (cosine drop fraction). Checked against torch.ao.pruning's
``CubicSL.sparsity_compute_fn`` and RigL's cosine-decayed drop fraction (not copied).

Taught in: Chapter 2, "Pruning I"; the drop fraction in Chapter 4 (dynamic sparse training).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import checks

__all__ = ["cubic_sparsity", "constant_sparsity", "cosine_drop_fraction",
           "CubicSchedule", "ConstantSchedule"]


def cubic_sparsity(step: int, *, s_final: float, t0: int, n: int, dt: int,
                   s_initial: float = 0.0) -> float:
    r"""Gradual pruning schedule of Zhu & Gupta (zhu2017prune, Eq. 1).

    .. math::

        s_t = s_f + (s_i - s_f) \left(1 - \frac{t - t_0}{n \Delta t}\right)^3,
        \qquad t \in \{t_0, t_0 + \Delta t, \dots, t_0 + n \Delta t\}

    The sparsity rises fast at first, while there are many redundant weights, and
    flattens as it approaches :math:`s_f`. It changes only at those ``n + 1`` steps: in
    between it holds the value of the last one, it is :math:`s_i` before :math:`t_0` and
    :math:`s_f` from :math:`t_0 + n\Delta t` on. With ``s_initial=0, s_final=0.9, n=10``
    the values at the update steps are 0, 0.2439, 0.4392, 0.5913, 0.7056, 0.7875, 0.8424,
    0.8757, 0.8928, 0.8991, 0.9.

    Args:
        step: training step ``t >= 0``.
        s_final: final sparsity :math:`s_f` in [0, 1).
        t0: first pruning step :math:`t_0 >= 0`.
        n: number of pruning intervals (``n + 1`` update steps, the first at sparsity
            :math:`s_i`), ``n >= 1``.
        dt: pruning frequency :math:`\Delta t >= 1` in steps (the paper found 100-1000 made
            little difference).
        s_initial: initial sparsity :math:`s_i`, ``0 <= s_i <= s_f``.

    Notes:
        torch.ao's ``CubicSL`` evaluates the formula at every step (no hold between
        updates) and clamps it to :math:`[s_i, s_f]`; here the value is held between the
        update steps, as in the paper ("masks are updated every Δt steps").
    """
    step = checks.integer(step, "step", lo=0)
    s_f = checks.fraction(s_final, "s_final", closed_high=False)
    s_i = checks.fraction(s_initial, "s_initial", closed_high=False)
    if s_i > s_f:
        raise ValueError(f"s_initial must be <= s_final (got s_initial={s_i}, s_final={s_f})")
    t0, n = checks.integer(t0, "t0", lo=0), checks.integer(n, "n", lo=1)
    dt = checks.integer(dt, "dt", lo=1)
    k = (step - t0) // dt  # completed update intervals (negative before t0)
    if k <= 0:
        return s_i  # exactly, before and at t0
    if k >= n:
        return s_f  # exactly, from t0 + n dt on
    return s_f + (s_i - s_f) * (1 - k / n) ** 3


def constant_sparsity(step: int, *, sparsity: float) -> float:
    """The same sparsity at every step (one-shot pruning, static sparse training)."""
    checks.integer(step, "step", lo=0)
    return checks.fraction(sparsity, "sparsity", closed_high=False)


def cosine_drop_fraction(step: int, *, alpha: float, t_end: int) -> float:
    r"""Fraction of active weights that RigL/SET drop (and regrow) at a mask update.

    .. math:: f_\mathrm{decay}(t) = \frac{\alpha}{2}\left(1 + \cos\frac{\pi t}{T_\mathrm{end}}\right)

    (evci2020rigging, Eq. 1; the paper's default is :math:`\alpha = 0.3`), and 0 from
    :math:`T_\mathrm{end}` on, when RigL stops updating masks (its cosine decay clamps
    ``t`` at ``T_end``).

    Args:
        step: training step ``t >= 0``.
        alpha: initial drop fraction in [0, 1].
        t_end: last mask-update step :math:`T_\mathrm{end} >= 1`.
    """
    step = checks.integer(step, "step", lo=0)
    alpha = checks.fraction(alpha, "alpha")
    t_end = checks.integer(t_end, "t_end", lo=1)
    if step >= t_end:
        return 0.0
    return alpha / 2 * (1 + math.cos(math.pi * step / t_end))


@dataclass(frozen=True)
class CubicSchedule:
    """:func:`cubic_sparsity` as an object: ``schedule(step)`` and ``is_update_step(step)``.

    The update steps are ``t0, t0 + dt, ..., t0 + n * dt``. Validated on construction.
    """

    s_final: float
    t0: int
    n: int
    dt: int
    s_initial: float = 0.0

    def __post_init__(self) -> None:
        checks.integer(self.t0, "t0", lo=0)
        self(self.t0)  # the other checks of cubic_sparsity

    def __call__(self, step: int) -> float:
        return cubic_sparsity(step, s_final=self.s_final, t0=self.t0, n=self.n, dt=self.dt,
                              s_initial=self.s_initial)

    @property
    def end(self) -> int:
        """The last update step, ``t0 + n * dt``."""
        return self.t0 + self.n * self.dt

    def is_update_step(self, step: int) -> bool:
        return self.t0 <= step <= self.end and (step - self.t0) % self.dt == 0


@dataclass(frozen=True)
class ConstantSchedule:
    """One-shot pruning: sparsity ``sparsity`` from step ``t0`` on, applied at ``t0``."""

    sparsity: float
    t0: int = 0

    def __post_init__(self) -> None:
        checks.fraction(self.sparsity, "sparsity", closed_high=False)
        checks.integer(self.t0, "t0", lo=0)

    def __call__(self, step: int) -> float:
        """0 (dense) before ``t0``, ``sparsity`` from ``t0`` on."""
        if step < self.t0:
            checks.integer(step, "step", lo=0)
            return 0.0
        return constant_sparsity(step, sparsity=self.sparsity)

    def is_update_step(self, step: int) -> bool:
        return step == self.t0
