"""sparsity_core.checks: the one set of argument checks (types, ranges, messages)."""
import numpy as np
import pytest
import torch

from sparsity_core import checks


def test_integer_accepts_numpy_ints_and_returns_python_int():
    out = checks.integer(np.int64(4), "k", lo=1, hi=4)
    assert out == 4 and type(out) is int


@pytest.mark.parametrize("bad", [True, 2.0, "3", None])
def test_integer_rejects_non_integers_with_a_type_error(bad):
    with pytest.raises(TypeError, match="k must be an int"):
        checks.integer(bad, "k")


@pytest.mark.parametrize("value, rule", [(0, "1 <= k"), (5, "1 <= k <= 4")])
def test_integer_range_message_names_the_rule(value, rule):
    hi = 4 if value == 5 else None
    with pytest.raises(ValueError, match=f"k must satisfy {rule} \\(got k={value}\\)"):
        checks.integer(value, "k", lo=1, hi=hi)


def test_positive_int():
    assert checks.positive_int(1, "n") == 1
    with pytest.raises(ValueError):
        checks.positive_int(0, "n")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_real_rejects_non_finite(value):
    with pytest.raises(ValueError, match="x must be finite"):
        checks.real(value, "x")


def test_fraction_bounds_open_and_closed():
    assert checks.fraction(0, "s") == 0.0 and checks.fraction(1, "s") == 1.0
    with pytest.raises(ValueError, match=r"s must be in \[0, 1\) \(got s=1.0\)"):
        checks.fraction(1.0, "s", closed_high=False)
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        checks.fraction(0.0, "d", closed_low=False)
    with pytest.raises(TypeError):
        checks.fraction(True, "s")


def test_nonnegative_and_one_sided_messages():
    assert checks.nonnegative(np.float32(0.5), "l") == 0.5
    with pytest.raises(ValueError, match="l must be >= 0"):
        checks.nonnegative(-1e-9, "l")
    with pytest.raises(ValueError, match="t must be < 2"):
        checks.real(2, "t", hi=2, closed_high=False)


def test_generator():
    g = torch.Generator()
    assert checks.generator(g) is g and checks.generator(None) is None
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        checks.generator(0)
