"""Importing a light module must not drag in heavy ones, builders are imported by nothing
in the package, and loaders must not touch the global random state the chapters seed."""
import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sparsity_core

PACKAGE_DIR = Path(sparsity_core.__file__).resolve().parent
ASSETS = "sparsity_core.assets"

#: The ``sparsity_core`` modules outside its own folder that importing each subpackage may
#: load, exactly. A new entry (a data set, a builder, a pretrained loader) is a decision:
#: make it here, on purpose.
OUTSIDE_MODULES = {
    "sdr": {"sparsity_core.checks"},
    "retrieval": set(),
    "models": {"sparsity_core.checks"},
    "pruning": {"sparsity_core.allocation", "sparsity_core.calibration", "sparsity_core.checks",
                "sparsity_core.masks", "sparsity_core.models", "sparsity_core.models.blocks",
                "sparsity_core.models.cnn", "sparsity_core.models.hooks",
                "sparsity_core.models.mlp", "sparsity_core.models.tinygpt"},
    "sae": {"sparsity_core.checks", "sparsity_core.training"},
    "dst": {"sparsity_core.checks", "sparsity_core.masks", "sparsity_core.schedules"},
    "attention": {"sparsity_core.checks", "sparsity_core.models", "sparsity_core.models.blocks",
                  "sparsity_core.models.cnn", "sparsity_core.models.hooks",
                  "sparsity_core.models.mlp", "sparsity_core.models.tinygpt"},     # PatternAttention
    "moe": {"sparsity_core.checks", "sparsity_core.models", "sparsity_core.models.blocks",
            "sparsity_core.models.cnn", "sparsity_core.models.hooks",
            "sparsity_core.models.mlp", "sparsity_core.models.tinygpt"},
    "data": {"sparsity_core.artifacts", "sparsity_core.checks", "sparsity_core.paths"},
    "pretrained": {"sparsity_core.artifacts", "sparsity_core.checks", "sparsity_core.paths",
                   "sparsity_core.models", "sparsity_core.models.blocks",
                   "sparsity_core.models.cnn", "sparsity_core.models.hooks",
                   "sparsity_core.models.mlp", "sparsity_core.models.tinygpt"},
}


@functools.cache
def _modules_after(statement: str) -> frozenset[str]:
    """The modules a fresh interpreter holds after running ``statement``."""
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return frozenset(run.stdout.split())


def test_masks_does_not_import_pandas():
    assert "pandas" not in _modules_after("import sparsity_core.masks")


def test_pruning_loads_no_data_assets_or_pretrained_loaders():
    loaded = _modules_after("import sparsity_core.pruning")
    ours = {m for m in loaded if m.startswith("sparsity_core.")}
    assert not {m for m in ours if m.split(".")[1] in ("data", "assets", "pretrained", "artifacts")}
    assert not {"transformers", "pandas", "safetensors"} & loaded


@pytest.mark.parametrize("sub", sorted(OUTSIDE_MODULES))
def test_subpackage_loads_only_its_listed_modules(sub):
    loaded = _modules_after(f"import sparsity_core.{sub}")
    outside = {m for m in loaded if m.startswith("sparsity_core.")
               and m != f"sparsity_core.{sub}" and not m.startswith(f"sparsity_core.{sub}.")}
    assert outside == OUTSIDE_MODULES[sub]
    assert "transformers" not in loaded   # loaders import it when called, never at import


def _imported(tree: ast.Module, package: str) -> list[str]:
    """Absolute names of every module ``import``-ed in ``tree``, a module of ``package``.

    ``from .x import y`` gives ``package.x`` and ``package.x.y`` (y may be a module).
    """
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            names += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return names


def test_nothing_outside_assets_imports_a_builder():
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR.parent)
        if rel.parts[1] == "assets":
            continue
        package = ".".join(rel.parent.parts)   # the package a relative import starts from
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offenders += [f"{rel}: {name}" for name in _imported(tree, package)
                      if name == ASSETS or name.startswith(ASSETS + ".")]
    assert offenders == []


def test_the_static_check_sees_relative_imports():
    tree = ast.parse("from .. import assets\nfrom ..assets.tinygpt import x\nfrom . import y\n")
    names = _imported(tree, "sparsity_core.pretrained")
    assert {"sparsity_core.assets", "sparsity_core.assets.tinygpt", "sparsity_core.pretrained.y"} <= set(names)
    tree = ast.parse("from .assets import manifest\nimport sparsity_core.assets.manifest\n")
    names = _imported(tree, "sparsity_core")
    assert names.count("sparsity_core.assets") == 1 and "sparsity_core.assets.manifest" in names


def test_load_tinygpt_leaves_the_global_rng_alone():
    from sparsity_core.pretrained import load_tinygpt

    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    load_tinygpt("small")
    torch.testing.assert_close(torch.rand(4), expected)
