"""A guard that refuses every network connection, shared by the loader tests.

Tests import it as ``from netguard import no_network`` (pytest puts ``tests/`` on the path).
"""
from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def no_network() -> Iterator[list]:
    """Make every ``socket.connect`` raise; yield the list of attempted addresses.

    A loader that swallowed the error and fell back to a local copy would still pass a
    plain "does it load" test, so the tests assert the list stays empty.
    """
    attempts: list = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network disabled by the test (connect to {address!r})")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        yield attempts
