"""schedules: Zhu & Gupta's cubic values (targets file), holds between updates, the
schedule objects, and RigL's cosine drop fraction."""
import math

import pytest

from sparsity_core.schedules import (ConstantSchedule, CubicSchedule, constant_sparsity,
                                     cosine_drop_fraction, cubic_sparsity)

#: Targets file, PR-1 [C]: s_i = 0, s_f = 0.9, n = 10, at the 11 update steps.
CUBIC_VALUES = [0, 0.2439, 0.4392, 0.5913, 0.7056, 0.7875, 0.8424, 0.8757, 0.8928, 0.8991, 0.9]


def test_cubic_values_from_the_targets_file():
    t0, dt = 100, 25
    got = [cubic_sparsity(t0 + k * dt, s_initial=0.0, s_final=0.9, t0=t0, n=10, dt=dt) for k in range(11)]
    assert [round(v, 4) for v in got] == CUBIC_VALUES
    assert got[0] == 0.0 and got[-1] == 0.9  # exact at both ends
    assert got == pytest.approx([0.9 * (1 - (1 - k / 10) ** 3) for k in range(11)], abs=1e-15)


def test_cubic_is_constant_before_t0_after_the_end_and_between_updates():
    kw = dict(s_initial=0.1, s_final=0.8, t0=10, n=4, dt=5)
    assert cubic_sparsity(0, **kw) == cubic_sparsity(9, **kw) == 0.1
    assert cubic_sparsity(30, **kw) == cubic_sparsity(10_000, **kw) == 0.8
    assert cubic_sparsity(15, **kw) == cubic_sparsity(19, **kw) < cubic_sparsity(20, **kw)
    values = [cubic_sparsity(t, **kw) for t in range(40)]
    assert values == sorted(values)  # non-decreasing


def test_schedule_objects():
    cubic = CubicSchedule(0.9, t0=4, n=10, dt=2)
    assert [t for t in range(40) if cubic.is_update_step(t)] == list(range(4, 25, 2))
    assert cubic.end == 24 and round(cubic(6), 4) == 0.2439 and cubic(7) == cubic(6)
    once = ConstantSchedule(0.5, t0=3)
    assert [t for t in range(10) if once.is_update_step(t)] == [3] and once(7) == 0.5
    assert constant_sparsity(12, sparsity=0.3) == 0.3


def test_cosine_drop_fraction():
    assert cosine_drop_fraction(0, alpha=0.3, t_end=100) == pytest.approx(0.3)
    assert cosine_drop_fraction(50, alpha=0.3, t_end=100) == pytest.approx(0.15)
    assert cosine_drop_fraction(25, alpha=0.3, t_end=100) == pytest.approx(0.15 * (1 + math.cos(math.pi / 4)))
    assert cosine_drop_fraction(100, alpha=0.3, t_end=100) == 0.0
    assert cosine_drop_fraction(150, alpha=0.3, t_end=100) == 0.0


@pytest.mark.parametrize("call, argument", [
    (lambda: cubic_sparsity(0, s_final=1.0, t0=0, n=10, dt=1), "s_final"),
    (lambda: cubic_sparsity(0, s_final=0.5, s_initial=0.6, t0=0, n=10, dt=1), "s_initial"),
    (lambda: cubic_sparsity(0, s_final=0.5, t0=0, n=0, dt=1), "n"),
    (lambda: cubic_sparsity(0, s_final=0.5, t0=0, n=10, dt=0), "dt"),
    (lambda: cubic_sparsity(-1, s_final=0.5, t0=0, n=10, dt=1), "step"),
    (lambda: CubicSchedule(0.9, t0=-1, n=10, dt=1), "t0"),
    (lambda: ConstantSchedule(1.0), "sparsity"),
    (lambda: constant_sparsity(0, sparsity=-0.1), "sparsity"),
    (lambda: cosine_drop_fraction(0, alpha=1.5, t_end=10), "alpha"),
    (lambda: cosine_drop_fraction(0, alpha=0.3, t_end=0), "t_end"),
])
def test_bad_input_raises(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


@pytest.mark.parametrize("call, argument", [
    (lambda: cubic_sparsity(0, s_final="0.5", t0=0, n=10, dt=1), "s_final"),
    (lambda: cubic_sparsity(1.0, s_final=0.5, t0=0, n=10, dt=1), "step"),
    (lambda: CubicSchedule(0.9, t0=0, n=True, dt=1), "n"),
    (lambda: ConstantSchedule(None), "sparsity"),
])
def test_an_argument_of_the_wrong_type_raises_a_type_error(call, argument):
    with pytest.raises(TypeError, match=f"{argument} must be"):
        call()


def test_constant_schedule_is_zero_before_t0():
    # "sparsity from step t0 on": dense before the one-shot step, then the target
    once = ConstantSchedule(0.5, t0=3)
    assert [once(t) for t in range(6)] == [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]
    assert ConstantSchedule(0.7)(0) == 0.7
