"""Server-Sent Events that poll: what /enclume/v1/events and the web page's room stream share.

The API process asks ``changes`` (run in a worker thread: it reads the database) every
``poll_s`` for the messages to send, and sends a comment line after ``KEEPALIVE_S`` of quiet
so that proxies do not close the stream. It ends when the client goes, or when ``go_on`` says
so (the web page's session ended).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse

KEEPALIVE_S = 15.0


def polling_stream(request: Request, changes: Callable[[], list[str]], banner: str,
                   poll_s: Callable[[], float], go_on: Callable[[], bool] = lambda: True
                   ) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        yield f": {banner}\n\n"
        quiet_since = time.monotonic()
        while not await request.is_disconnected() and go_on():
            messages = await anyio.to_thread.run_sync(changes)
            if messages:  # one write for the whole look: a room changing at once is one chunk
                yield "".join(messages)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            await anyio.sleep(poll_s())

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
