"""The agent token: the one this agent got from its own lookup, and nothing else, is accepted."""

from __future__ import annotations

import hmac
import threading


class TokenState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None

    def set(self, token: str) -> None:
        with self._lock:
            self._token = token

    def get(self) -> str | None:
        with self._lock:
            return self._token

    def check(self, presented: str | None) -> int:
        """0 when ``presented`` is the token; else the HTTP status to refuse with."""
        expected = self.get()
        if not presented or expected is None:
            return 401
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            return 403
        return 0
