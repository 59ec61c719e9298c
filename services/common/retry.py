"""The one retry loop: run a unit of work again, after a short randomised pause, while it fails
with an error its caller knows another try can get past (`optimistic.retrying_stale`,
`transient.retrying_transient`)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def retry_while(attempt: Callable[[], T], worth_retrying: Callable[[Exception], bool],
                attempts: int, backoff_s: float) -> T:
    """``attempt()``, up to ``attempts`` times while it raises what ``worth_retrying`` accepts;
    the pause grows with each try and is randomised so concurrent retriers spread out."""
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except Exception as exc:
            if number == attempts or not worth_retrying(exc):
                raise
            time.sleep(random.uniform(0, backoff_s * number))
    raise AssertionError("unreachable")
