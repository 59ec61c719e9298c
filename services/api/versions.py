"""API microversions, negotiated as Ironic does.

A request names its version in ``X-OpenStack-Ironic-API-Version: 1.N`` or
``OpenStack-API-Version: baremetal 1.N`` ("latest" means the maximum); none means the minimum.
Every response carries the minimum, maximum and served versions; a version outside the range
gets 406.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import error_body

Version = tuple[int, int]

MIN_VERSION: Version = (1, 1)
MAX_VERSION: Version = (1, 115)

HEADER = "x-openstack-ironic-api-version"
GENERIC_HEADER = "openstack-api-version"
# ASCII digits only, and few of them: int() of thousands of digits raises, a "1.٣" is no version.
VERSION_RE = re.compile(r"([0-9]{1,9})\.([0-9]{1,9})")  # matched whole


def format_version(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


class InvalidVersion(ValueError):
    pass


def parse(headers: dict[str, str]) -> Version:
    raw = headers.get(HEADER)
    if raw is None and GENERIC_HEADER in headers:
        for item in headers[GENERIC_HEADER].split(","):
            service, _, value = item.strip().partition(" ")
            if service.lower() == "baremetal":
                raw = value.strip()
    if raw is None:
        return MIN_VERSION
    raw = raw.strip()
    if raw.lower() == "latest":
        return MAX_VERSION
    match = VERSION_RE.fullmatch(raw)
    if not match:
        raise InvalidVersion(f"Invalid value for {HEADER} header: {raw[:32]!r}. Expected a "
                             "version like 1.73 or \"latest\".")
    return int(match.group(1)), int(match.group(2))


def response_headers(served: Version | None) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-openstack-ironic-api-minimum-version", format_version(MIN_VERSION).encode()),
        (b"x-openstack-ironic-api-maximum-version", format_version(MAX_VERSION).encode()),
    ]
    if served is not None:
        text = format_version(served).encode()
        headers += [(b"x-openstack-ironic-api-version", text),
                    (b"openstack-api-version", b"baremetal " + text)]
    headers.append((b"vary", b"X-OpenStack-Ironic-API-Version, OpenStack-API-Version"))
    return headers


class VersionMiddleware:
    """Puts the negotiated version in ``scope["state"]["api_version"]`` and the headers out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        try:
            version = parse(headers)
        except InvalidVersion as exc:
            await _reject(send, 400, str(exc), None)
            return
        if not MIN_VERSION <= version <= MAX_VERSION:
            message = (f"Version {format_version(version)} was requested but the minor version "
                       "is not supported by this service. The supported version range is: "
                       f"[{format_version(MIN_VERSION)}, {format_version(MAX_VERSION)}].")
            await _reject(send, 406, message, None)
            return
        scope.setdefault("state", {})["api_version"] = version

        async def send_with_versions(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + response_headers(version)
            await send(message)

        await self.app(scope, receive, send_with_versions)


async def _reject(send: Send, status: int, text: str, served: Version | None) -> None:
    body = error_body(status, text)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *response_headers(served)],
    })
    await send({"type": "http.response.body", "body": body})
