"""No module of sparsity_core reaches into another one's private names.

A helper that a second module needs is public and documented in the module that owns it
(argument checks live in :mod:`sparsity_core.checks`). Static: every ``.py`` under
``sparsity_core/`` is parsed with ``ast``, nothing is imported or run.

Flagged, where ``_name`` is private (one leading underscore; dunders such as ``__version__``
are not) and the module is a sparsity_core module:

* ``from sparsity_core.x import _name`` and the relative ``from .x import _name``;
* ``module._name`` where ``module`` was bound by ``from sparsity_core import x`` /
  ``from .. import x`` / ``import sparsity_core.x as module``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sparsity_core

PACKAGE_DIR = Path(sparsity_core.__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name

def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> tuple[str, ...]:
    """``('sparsity_core', 'pruning', 'imp')`` for ``sparsity_core/pruning/imp.py``;
    a package's ``__init__.py`` is the package itself."""
    parts = (PACKAGE, *path.relative_to(PACKAGE_DIR).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _resolve(node: ast.ImportFrom, module: tuple[str, ...], is_package: bool) -> tuple[str, ...]:
    """The absolute dotted name, as parts, of the module ``node`` imports from."""
    target = tuple(node.module.split(".")) if node.module else ()
    if not node.level:
        return target
    package = module if is_package else module[:-1]
    base = package[:len(package) - (node.level - 1)]
    return base + target


def _is_module(parts: tuple[str, ...]) -> bool:
    """Whether ``parts`` names a module or package of sparsity_core (by its file)."""
    if not parts or parts[0] != PACKAGE:
        return False
    path = PACKAGE_DIR.joinpath(*parts[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def private_imports(source: str, module: tuple[str, ...], is_package: bool = False) -> list[str]:
    """Each private name that ``source`` (the text of ``module``) takes from another
    sparsity_core module, as ``'line N: from X import _name'`` or ``'line N: X._name'``."""
    tree = ast.parse(source)
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            origin = _resolve(node, module, is_package)
            if not origin or origin[0] != PACKAGE:
                continue
            for alias in node.names:
                if _private(alias.name) and origin != module:
                    found.append(f"line {node.lineno}: from {'.'.join(origin)} import {alias.name}")
                elif _is_module(origin + (alias.name,)):
                    aliases[alias.asname or alias.name] = origin + (alias.name,)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = tuple(alias.name.split("."))
                if alias.asname and _is_module(parts):
                    aliases[alias.asname] = parts
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and aliases[node.value.id] != module):
            found.append(f"line {node.lineno}: {'.'.join(aliases[node.value.id])}.{node.attr}")
    return found


def _checked_files() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def test_no_module_imports_another_modules_private_names():
    offences = []
    for path in _checked_files():
        for hit in private_imports(path.read_text(encoding="utf-8"), _module_name(path),
                                   path.name == "__init__.py"):
            offences.append(f"{path.relative_to(PACKAGE_DIR.parent)} {hit}")
    assert not offences, ("private names used across modules (make them public and documented "
                          "in their module, or use sparsity_core.checks):\n" + "\n".join(offences))


def test_the_scan_covers_the_package():
    files = _checked_files()
    assert PACKAGE_DIR / "masks.py" in files and PACKAGE_DIR / "pruning" / "imp.py" in files
    assert PACKAGE_DIR / "sae" / "base.py" in files


IMP = (PACKAGE, "pruning", "imp")


@pytest.mark.parametrize("source, module, expected", [
    ("from ..masks import _split, apply_masks", IMP, ["line 1: from sparsity_core.masks import _split"]),
    ("from sparsity_core.masks import (\n    keep_count, _density)", IMP,
     ["line 1: from sparsity_core.masks import _density"]),
    ("from .base import _helper", IMP, ["line 1: from sparsity_core.pruning.base import _helper"]),
    ("from .. import masks\nmasks._select(x, 1)", IMP, ["line 2: sparsity_core.masks._select"]),
    ("import sparsity_core.masks as m\nm._split(a, b)", IMP, ["line 2: sparsity_core.masks._split"]),
    ("from . import __version__", (PACKAGE, "bench"), []),
    ("from ._packages import import_required", (PACKAGE, "data", "images"), []),
    ("from .. import checks\nchecks.integer(1, 'k')", IMP, []),
    ("from torch.nn.utils import _pair\nfrom numpy import _x", IMP, []),
    ("self._hook(1)\nmodule._forward_hooks", IMP, []),
])
def test_the_scan_finds_private_imports(source, module, expected):
    assert private_imports(source, module) == expected


def test_relative_imports_in_a_package_init_resolve_against_the_package():
    assert private_imports("from .imp import _plain_state", (PACKAGE, "pruning"), is_package=True) == [
        "line 1: from sparsity_core.pruning.imp import _plain_state"]
