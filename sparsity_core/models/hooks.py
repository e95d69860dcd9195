"""A hook point that knows whether anything is hooked on it.

:class:`~sparsity_core.models.tinygpt.CausalSelfAttention` forms the ``(B, nh, T, T)``
attention probabilities only when someone reads them; its ``hook_attn_probs`` is a
:class:`HookPoint`, which answers that question from the hooks registered through its
public methods instead of from PyTorch's private hook dictionaries.
"""
from __future__ import annotations

from typing import Any

from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["HookPoint", "HookHandle"]


class HookHandle:
    """The handle of a hook on a :class:`HookPoint`, used like ``torch.utils.hooks.RemovableHandle``.

    ``remove()`` (or leaving a ``with handle:`` block) removes the hook and un-counts it;
    removing twice is harmless.
    """

    def __init__(self, handle: RemovableHandle, live: set[int]) -> None:
        self.handle, self._live = handle, live

    @property
    def id(self) -> int:
        """The wrapped handle's id."""
        return self.handle.id

    def remove(self) -> None:
        """Remove the hook from its module and from the count of its :class:`HookPoint`."""
        self.handle.remove()
        self._live.discard(self.handle.id)

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


class HookPoint(nn.Identity):
    """An ``nn.Identity`` that counts the forward hooks and pre-hooks registered on it.

    ``register_forward_hook`` and ``register_forward_pre_hook`` take the usual arguments and
    register as ``nn.Module`` does; the hook counts until its returned :class:`HookHandle` is
    removed. :attr:`hooked` says whether any hook is live.
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: set[int] = set()  # ids of the handles not yet removed

    @property
    def hooked(self) -> bool:
        """True while at least one forward hook or pre-hook registered here is not removed."""
        return bool(self._live)

    def register_forward_hook(self, *args: Any, **kwargs: Any) -> HookHandle:
        """:meth:`torch.nn.Module.register_forward_hook`, counted in :attr:`hooked`."""
        return self._track(super().register_forward_hook(*args, **kwargs))

    def register_forward_pre_hook(self, *args: Any, **kwargs: Any) -> HookHandle:
        """:meth:`torch.nn.Module.register_forward_pre_hook`, counted in :attr:`hooked`."""
        return self._track(super().register_forward_pre_hook(*args, **kwargs))

    def _track(self, handle: RemovableHandle) -> HookHandle:
        self._live.add(handle.id)
        return HookHandle(handle, self._live)
