"""Waiting in tests for something that happens in another thread or process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL_S = 0.05


def eventually(check: Callable[[], T | None], timeout: float = 30.0,
               what: str = "the condition") -> T:
    """The first true value ``check`` returns; AssertionError naming ``what`` after ``timeout``
    seconds. ``check`` is called at least once, also with a zero timeout. The default is
    generous: CI runs four workers on two cores, and a wait only lasts that long when it fails."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL_INTERVAL_S)
