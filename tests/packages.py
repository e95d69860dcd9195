"""Make an installed package look missing, for the loaders' install-hint tests.

Tests import it as ``from packages import hide_package`` (pytest puts ``tests/`` on the path).
"""
import importlib.util


def hide_package(monkeypatch, module: str) -> None:
    """``importlib.util.find_spec(module)`` returns None for the rest of the test."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == module else real(name, *a))
