"""Every answer names its request, as Ironic's IronicRequestId middleware (oslo.middleware's
RequestId; API 1.107 marks it): ``X-OpenStack-Request-Id`` and its older twin
``OpenStack-Request-Id``, ``req-<uuid>``, new for each request. The id is logged with the
request's method and path at debug level, to find a client's request in the logs."""

from __future__ import annotations

import logging
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOG = logging.getLogger(__name__)
HEADERS = (b"x-openstack-request-id", b"openstack-request-id")


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        LOG.debug("%s %s %s", request_id, scope.get("method"), scope.get("path"))
        value = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in HEADERS]
                message["headers"] = [*kept, *((name, value) for name in HEADERS)]
            await send(message)

        await self.app(scope, receive, send_with_id)
