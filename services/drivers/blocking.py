"""Blocking BMC calls, bounded: at most N at once, each with a deadline that frees the caller.

pyghmi and sushy block. Conductor workers call them through ``BoundedCalls`` so that a BMC that
never answers costs one pool thread for a while, never a conductor worker for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from services.drivers.base import DriverError

T = TypeVar("T")


class CallTimedOut(DriverError):
    pass


class BoundedCalls:
    def __init__(self, name: str, concurrency: int, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix=name)

    def call(self, what: str, fn: Callable[[], T], timeout_s: float | None = None,
             on_never_started: Callable[[], None] | None = None) -> T:
        """Run ``fn`` in the pool; CallTimedOut names ``what`` when it takes too long.

        ``on_never_started`` runs when the deadline passed before ``fn`` even started (it was
        queued behind other calls), so the caller can undo what it prepared for ``fn``.
        """
        limit = self.timeout_s if timeout_s is None else timeout_s
        future = self._pool.submit(fn)
        try:
            return future.result(timeout=limit)
        except FutureTimeout:
            if future.cancel() and on_never_started is not None:
                on_never_started()
            raise CallTimedOut(f"{what} did not answer within {limit:.0f} s") from None

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def wait_for(read: Callable[[], T], wanted: Callable[[T], bool], timeout_s: float,
             interval_s: float) -> T:
    """Read until ``wanted(value)`` or the timeout; returns the last value read either way."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while not wanted(value) and time.monotonic() < deadline:
        time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))
        value = read()
    return value
