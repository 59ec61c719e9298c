"""The HTTP side of the metrics, as plain ASGI (the core has no web framework): the request
timer every service's app is wrapped in, and the ``GET /metrics`` endpoint.

The route label is the template of the route that answered (``/v1/nodes/{node_ident}``),
which Starlette and FastAPI leave in the request's scope; a request no route took is counted
under one ``unmatched`` label, so neither ids nor probes of random paths add series.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from services.common.metrics import HTTP_REQUEST_SECONDS, UNMATCHED_ROUTE, status_class

METRICS_PATH = "/metrics"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def route_template(scope: Scope) -> str:
    if scope.get("path") == METRICS_PATH:
        return METRICS_PATH
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestTimer:
    """Times every HTTP request of ``app`` by method, route template and status class."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an app that raised before answering

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            method = scope.get("method", "GET")
            if method not in _METHODS:
                method = "other"
            HTTP_REQUEST_SECONDS.labels(method, route_template(scope), status_class(status)) \
                .observe(time.perf_counter() - started)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def metrics_bearer(require_auth: bool, secret: str | None) -> str | None:
    """What ``MetricsEndpoint`` asks for: nothing, or the secret ("" refuses everyone)."""
    return (secret or "") if require_auth else None


class MetricsEndpoint:
    """Answers ``GET /metrics`` with this process's metrics; passes every other request on.

    ``bearer``: when set, the request must carry ``Authorization: Bearer <bearer>`` (the
    conductor's and the boot service's RPC secret, with ENCLUME_METRICS_REQUIRE_AUTH).
    """

    def __init__(self, app: App, bearer: str | None = None) -> None:
        self.app = app
        self.bearer = bearer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != METRICS_PATH:
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await _answer(send, 405, b"method not allowed\n", "text/plain")
            return
        if self.bearer is not None and not self._authorized(scope):
            await _answer(send, 401, b"metrics need the bearer secret\n", "text/plain",
                          [(b"www-authenticate", b"Bearer")])
            return
        body = generate_latest(REGISTRY)
        await _answer(send, 200, b"" if scope.get("method") == "HEAD" else body,
                      CONTENT_TYPE_LATEST)

    def _authorized(self, scope: Scope) -> bool:
        if not self.bearer:  # required, but no secret configured: nobody may read them
            return False
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        expected = b"Bearer " + self.bearer.encode()
        return hmac.compare_digest(given, expected)


async def _answer(send: Send, status: int, body: bytes, content_type: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})

