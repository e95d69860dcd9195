"""Argument checks shared by every module: one signature, ``check(value, name, ...)``.

Each check returns the value in its canonical Python type (``int`` for NumPy integers,
``float`` for reals) or raises with a message that names the argument and repeats what was
given: a ``TypeError`` when the value has the wrong type, a ``ValueError`` when it has the
right type but lies outside the accepted range. ``bool`` is never accepted as a number
(``True`` is an ``int`` to Python, but never what a caller meant by ``k=True``).

    >>> integer(3, "k", lo=1)
    3
    >>> fraction(1.5, "sparsity")
    Traceback (most recent call last):
    ...
    ValueError: sparsity must be in [0, 1] (got sparsity=1.5)
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import torch

__all__ = ["integer", "positive_int", "real", "nonnegative", "fraction", "generator"]


def integer(value: object, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an ``int`` with ``lo <= value <= hi`` (either bound may be ``None``)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int (got {type(value).__name__} {value!r})")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rule = (f"{lo} <= " if lo is not None else "") + name + (f" <= {hi}" if hi is not None else "")
        raise ValueError(f"{name} must satisfy {rule} (got {name}={value})")
    return value


def positive_int(value: object, name: str) -> int:
    """``value`` as an ``int >= 1``."""
    return integer(value, name, lo=1)


def real(value: object, name: str, *, lo: float | None = None, hi: float | None = None,
         closed_low: bool = True, closed_high: bool = True) -> float:
    """``value`` as a finite ``float`` in the interval from ``lo`` to ``hi``.

    ``closed_low`` / ``closed_high`` say whether the bound itself is allowed.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number (got {type(value).__name__} {value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite (got {name}={value!r})")
    low_ok = lo is None or (value >= lo if closed_low else value > lo)
    high_ok = hi is None or (value <= hi if closed_high else value < hi)
    if not (low_ok and high_ok):
        if lo is not None and hi is not None:
            rule = f"in {'[' if closed_low else '('}{lo:g}, {hi:g}{']' if closed_high else ')'}"
        elif lo is not None:
            rule = f"{'>=' if closed_low else '>'} {lo:g}"
        else:
            rule = f"{'<=' if closed_high else '<'} {hi:g}"
        raise ValueError(f"{name} must be {rule} (got {name}={value!r})")
    return value


def nonnegative(value: object, name: str) -> float:
    """``value`` as a finite ``float >= 0``."""
    return real(value, name, lo=0.0)


def fraction(value: object, name: str, *, closed_low: bool = True, closed_high: bool = True) -> float:
    """``value`` as a ``float`` in ``[0, 1]`` (open at an end whose ``closed_*`` is False)."""
    return real(value, name, lo=0.0, hi=1.0, closed_low=closed_low, closed_high=closed_high)


def generator(value: object, name: str = "generator") -> torch.Generator | None:
    """``value`` if it is a ``torch.Generator`` or ``None``."""
    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None (got {type(value).__name__})")
    return value
