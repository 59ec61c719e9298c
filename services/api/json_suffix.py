"""Ironic's ``.json`` suffix, gone at API 1.91: a request that names a version below 1.91 in
``X-OpenStack-Ironic-API-Version`` has a trailing ``.json`` stripped from its path
(``/v1/nodes/n1.json`` is ``/v1/nodes/n1``), as Ironic's JsonExtensionMiddleware does; from
1.91 on, and without that header, the path is taken as it is."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.versions import HEADER, Version

SUFFIX = ".json"
LAST_VERSION_WITH_SUFFIX: Version = (1, 90)


class JsonSuffixMiddleware:
    """Runs after VersionMiddleware, which put the negotiated version in the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _strips(scope):
            path = scope["path"].rstrip("/")[:-len(SUFFIX)]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


def _strips(scope: Scope) -> bool:
    if not scope["path"].rstrip("/").endswith(SUFFIX):
        return False
    named = any(key.decode("latin-1").lower() == HEADER for key, _ in scope["headers"])
    version = scope.get("state", {}).get("api_version")
    return named and version is not None and version <= LAST_VERSION_WITH_SUFFIX
