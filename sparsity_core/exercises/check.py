"""Check a reader's solution to an exercise against the package, and say in plain words what differs.

An :class:`Exercise` names the function the reader writes in a chapter (``rigl_update``), the
package's answer with the same signature (:attr:`Exercise.reference`) and a few small,
deterministic cases. :func:`run_check` calls both on every case and raises :class:`CheckFailed`
with the first difference it finds, described for a student ("on a 4 x 8 weight with fraction
0.25: 2 of 32 entries differ; the first at index (0, 3): yours True, expected False").

The chapters' hidden solutions pass these checks in ``make test`` (``tests/test_exercise_checks.py``);
the student edition (``ci/student_edition.py``) calls them after each exercise.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["CheckFailed", "Case", "Exercise", "describe_difference", "run_check"]


class CheckFailed(AssertionError):
    """A solution differs from the package (the message says where and how)."""


@dataclass(frozen=True)
class Case:
    """One input of a check: ``what`` describes it in words ("a 4 x 8 weight, fraction 0.25")."""
    what: str
    args: tuple
    kwargs: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Exercise:
    """An exercise of a chapter whose answer the package has.

    Attributes:
        name: the function the reader writes, as the chapter's exercise cell names it.
        chapter: the notebook stem (``04_dst``).
        task: what the function computes, in a few words (shown when the check passes).
        reference: the package's answer, with the exercise's signature.
        cases: builds the small cases (called at each check; deterministic).
        rtol, atol: tolerance for floating-point outputs (integers and booleans must be equal).
    """
    name: str
    chapter: str
    task: str
    reference: Callable
    cases: Callable[[], Sequence[Case]]
    rtol: float = 1e-5
    atol: float = 1e-7


def _index(flat: int, shape: tuple) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _array_difference(got: np.ndarray, want: np.ndarray, rtol: float, atol: float, kind: str) -> str | None:
    if got.shape != want.shape:
        return f"{kind} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    if want.dtype == bool or got.dtype == bool:
        if got.dtype != want.dtype:
            return f"{kind} has dtype {got.dtype}, expected {want.dtype}"
        bad = got != want
    elif np.issubdtype(want.dtype, np.integer) and not np.issubdtype(got.dtype, np.integer):
        return f"{kind} has dtype {got.dtype}, expected integers ({want.dtype})"
    elif np.issubdtype(want.dtype, np.integer):
        bad = got != want
    else:
        g, w = got.astype(np.float64), want.astype(np.float64)
        bad = ~np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return None
    first = int(np.flatnonzero(bad.reshape(-1))[0])
    where = _index(first, got.shape)
    return (f"{int(bad.sum())} of {bad.size} entries differ; the first at index {where}: "
            f"yours {got.reshape(-1)[first].item()!r}, expected {want.reshape(-1)[first].item()!r}")


def describe_difference(got, want, rtol: float = 1e-5, atol: float = 1e-7, kind: str = "the output") -> str | None:
    """None when ``got`` equals ``want`` (tensors, arrays, numbers, bools, tuples, lists, dicts,
    nested; floats within ``rtol``/``atol``), else the first difference in words."""
    if want is None:
        return None if got is None else f"{kind} is {got!r}, expected None"
    if got is None or got is Ellipsis:
        return f"{kind} is {got!r}: the function returns nothing yet (is it still the exercise's stub?)"
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{kind} is a {type(got).__name__}, expected a torch tensor"
        if got.dtype != want.dtype and (want.dtype == torch.bool or got.dtype == torch.bool):
            return f"{kind} has dtype {got.dtype}, expected {want.dtype}"
        return _array_difference(got.detach().cpu().numpy(), want.detach().cpu().numpy(), rtol, atol, kind)
    if isinstance(want, np.ndarray):
        if isinstance(got, torch.Tensor) or not hasattr(got, "shape"):
            return f"{kind} is a {type(got).__name__}, expected a numpy array"
        return _array_difference(np.asarray(got), want, rtol, atol, kind)
    if isinstance(want, Mapping):
        if not isinstance(got, Mapping):
            return f"{kind} is a {type(got).__name__}, expected a dict"
        if set(got) != set(want):
            return f"{kind} has keys {sorted(got, key=str)}, expected {sorted(want, key=str)}"
        for key in want:
            diff = describe_difference(got[key], want[key], rtol, atol, f"{kind}[{key!r}]")
            if diff:
                return diff
        return None
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"{kind} is a {type(got).__name__}, expected a sequence of {len(want)}"
        if len(got) != len(want):
            return f"{kind} has {len(got)} items, expected {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            diff = describe_difference(g, w, rtol, atol, f"item {i} of {kind}")
            if diff:
                return diff
        return None
    if isinstance(want, (bool, np.bool_)):
        return None if isinstance(got, (bool, np.bool_)) and bool(got) == bool(want) else f"{kind} is {got!r}, expected {bool(want)!r}"
    if isinstance(want, (int, np.integer)):
        if isinstance(got, (float, np.floating)) and float(got) == int(want):
            return None
        return None if isinstance(got, (int, np.integer)) and int(got) == int(want) else f"{kind} is {got!r}, expected {int(want)!r}"
    if isinstance(want, (float, np.floating)):
        try:
            g = float(got)
        except (TypeError, ValueError):
            return f"{kind} is a {type(got).__name__}, expected a number"
        if math.isnan(g) and math.isnan(float(want)):
            return None
        return None if math.isclose(g, float(want), rel_tol=rtol, abs_tol=atol) else f"{kind} is {g!r}, expected {float(want)!r}"
    return None if got == want else f"{kind} is {got!r}, expected {want!r}"


def run_check(exercise: Exercise, student_fn: Callable, *, quiet: bool = False) -> str:
    """Call ``student_fn`` and the package's answer on every case of ``exercise``.

    Each call gets its own deep copy of the case's inputs, so a function that changes its
    arguments in place cannot change what the other sees.

    Returns:
        The success message (also printed unless ``quiet``).

    Raises:
        CheckFailed: on the first case where the outputs differ, where ``student_fn`` raises,
            or when it is still a stub (raises ``NotImplementedError`` or returns nothing).
    """
    if not callable(student_fn):
        raise TypeError(f"check the function itself: pass {exercise.name}, not {type(student_fn).__name__}")
    cases = list(exercise.cases())
    for case in cases:
        try:
            got = student_fn(*copy.deepcopy(case.args), **copy.deepcopy(dict(case.kwargs)))
        except NotImplementedError:
            raise CheckFailed(f"{exercise.name} is not written yet (it raises NotImplementedError): "
                              f"fill in the exercise cell, run it, then run this check again") from None
        except Exception as err:  # the student's code failed: say where, keep the traceback
            raise CheckFailed(f"on {case.what}, {exercise.name} raised {type(err).__name__}: {err}") from err
        want = exercise.reference(*copy.deepcopy(case.args), **copy.deepcopy(dict(case.kwargs)))
        diff = describe_difference(got, want, exercise.rtol, exercise.atol)
        if diff:
            raise CheckFailed(f"{exercise.name} differs from the package on {case.what}: {diff}")
    message = f"✓ {exercise.name} ({exercise.task}) matches the package on all {len(cases)} cases"
    if not quiet:
        print(message)
    return message
