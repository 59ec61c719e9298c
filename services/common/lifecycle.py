"""Things that run beside a server for the life of the process (a conductor, its periodic
tasks ...): started in order when the server starts, stopped in reverse when it stops."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

LOG = logging.getLogger(__name__)


class Service(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def lifespan_of(services: Sequence[Service]
                ) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """An ASGI lifespan (for FastAPI or Starlette) that starts and stops ``services``."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        for service in services:
            service.start()
        try:
            yield
        finally:
            for service in reversed(services):
                service.stop()

    return lifespan


class StartedFirst:
    """Services started before HTTP serves (so that a failure is a clear message, not a
    traceback from the server's start) and stopped with the HTTP app's lifespan: uvicorn ends
    the process by re-raising SIGTERM once the app has shut down, so code after it never runs."""

    def __init__(self, services: list[Service]) -> None:
        self.services = services
        self._started: list[Service] = []

    def start_now(self) -> None:
        """Starts the services in order; on a failure stops the started ones and raises."""
        try:
            for service in self.services:
                service.start()
                self._started.append(service)
        except BaseException:
            self.stop()
            raise

    def start(self) -> None:
        """The lifespan's start: nothing left to do."""

    def stop(self) -> None:
        while self._started:
            service = self._started.pop()
            try:
                service.stop()
            except Exception:
                LOG.exception("stopping %s failed", type(service).__name__)
