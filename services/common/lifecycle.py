"""Things that run beside a server for the life of the process (a conductor, its periodic
tasks ...): started in order when the server starts, stopped in reverse when it stops."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol


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
