"""Serving /openapi.json: the document is built at its first request, and the modules that
describe it (services/api/openapi*.py, a few hundred KiB of tables) are imported only then,
not at every server's start."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def install_openapi(app: FastAPI) -> None:
    """Serve the described document at /openapi.json (built once, at its first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from services.api.openapi import build

            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
