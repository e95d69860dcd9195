"""Checks for the chapters' exercises: a reader's function against the package's answer.

Each chapter's exercises that implement a piece the package has (a RigL update, a BM25 score,
a TopK activation) have a check here, ``check_<function name>(student_fn)``, which runs the
reader's function and the package on a few small cases and says, in plain words, what
differs::

    from sparsity_core.exercises import check_rigl_update
    check_rigl_update(rigl_update)    # prints "✓ rigl_update (...) matches the package ..."
                                      # or raises CheckFailed: "... differs from the package on ..."

:data:`EXERCISES` maps ``(chapter, function name)`` to its :class:`~.check.Exercise`;
:func:`check` looks one up by name. The book's hidden solutions pass every check in
``make test``; the student edition (``make student``) calls the check after each exercise.
"""
from __future__ import annotations

from collections.abc import Callable

from . import ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08
from .check import Case, CheckFailed, Exercise, describe_difference, run_check

_MODULES = (ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08)

#: (notebook stem, function name) -> the exercise's check.
EXERCISES: dict[tuple[str, str], Exercise] = {(ex.chapter, ex.name): ex for m in _MODULES for ex in m.EXERCISES}

__all__ = ["Case", "CheckFailed", "Exercise", "EXERCISES", "check", "describe_difference", "run_check"]
for _module in _MODULES:
    for _name in getattr(_module, "__all__", ()):
        if _name.startswith("check_"):
            if _name in globals():  # two chapters' exercises with one function name
                raise ImportError(f"{_name} is defined by two chapter modules; rename one")
            globals()[_name] = getattr(_module, _name)
            __all__.append(_name)


def check(name: str, student_fn: Callable, chapter: str | None = None) -> str:
    """Run the check of the exercise whose function is ``name`` (``chapter``: a notebook stem,
    needed only when two chapters use the same name)."""
    found = [ex for (ch, n), ex in EXERCISES.items() if n == name and chapter in (None, ch)]
    if not found:
        raise KeyError(f"no checked exercise named {name!r}; known: {sorted(n for _, n in EXERCISES)}")
    if len(found) > 1:
        raise KeyError(f"{name!r} is an exercise of {[ex.chapter for ex in found]}: pass chapter=")
    return run_check(found[0], student_fn)
