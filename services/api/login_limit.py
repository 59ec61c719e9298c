"""Failed logins counted per user name and per client address in a sliding window: past the
limit, the next attempts are refused before bcrypt runs (a guessing bot gets nowhere, and
bcrypt's cost is not paid for it). One address may fail ``ADDRESS_FACTOR`` times as often as
one user name: a whole school may reach the page through one NAT address. The web page's
login uses it, and so does a PC's boot prompt (the PC's node as the "address")."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

ADDRESS_FACTOR = 10


class LoginLimiter:
    def __init__(self, attempts: int, window_s: float,
                 clock: Callable[[], float] = time.monotonic,
                 address_attempts: int | None = None) -> None:
        self.attempts, self.window_s, self.clock = attempts, window_s, clock
        self.address_attempts = address_attempts or attempts * ADDRESS_FACTOR
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._guard = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]  # memory stays bounded by the keys failing right now
        return failures

    def blocked(self, user: str, address: str) -> bool:
        now = self.clock()
        with self._guard:
            return (len(self._recent(f"user:{user}", now)) >= self.attempts
                    or len(self._recent(f"address:{address}", now))
                    >= self.address_attempts)

    def failed(self, user: str, address: str) -> None:
        now = self.clock()
        with self._guard:
            self._failures[f"user:{user}"].append(now)
            self._failures[f"address:{address}"].append(now)

    def succeeded(self, user: str) -> None:
        with self._guard:
            self._failures.pop(f"user:{user}", None)
