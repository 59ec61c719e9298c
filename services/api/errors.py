"""Ironic's error body: ``{"error_message": "<JSON with faultstring, faultcode, debuginfo>"}``.

openstacksdk and python-ironicclient both unwrap that inner JSON string to show faultstring.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.exceptions import EnclumeError
from services.common.secrets import scrub

LOG = logging.getLogger(__name__)


def error_body(status: int, message: str) -> bytes:
    fault = {"faultstring": scrub(message), "faultcode": "Client" if status < 500 else "Server",
             "debuginfo": None}
    return json.dumps({"error_message": json.dumps(fault)}).encode()


def error_response(status: int, message: str, headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    response = JSONResponse(status_code=status, content=None, headers=headers)
    response.body = error_body(status, message)
    response.headers["content-length"] = str(len(response.body))
    return response


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        if error.get("type") == "json_invalid":
            return "Invalid JSON in the request body."
        parts.append(f"{location}: {error.get('msg')}" if location else str(error.get("msg")))
    return "Invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(EnclumeError)
    async def enclume_error(_request: Request, exc: EnclumeError) -> JSONResponse:
        retry_after = None if exc.retry_after_s is None else {"Retry-After":
                                                               str(exc.retry_after_s)}
        return error_response(exc.code, exc.message, headers=retry_after)

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        LOG.error("unexpected error", exc_info=exc)
        return error_response(500, "An unexpected error occurred; the details are in the "
                                   "service log.")

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = "The resource could not be found."
        if exc.status_code == 405:
            message = "The method is not allowed for this resource."
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))
