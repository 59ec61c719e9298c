"""Every route's body goes through the one validation layer before an endpoint sees it.

``api_router`` makes the routers of the API: their JSON bodies are parsed by
``validation.parse_json`` (no NaN or Infinity, no NUL or lone surrogate at any depth, bounded
nesting), and the text fields of form bodies (the web page's) by ``validation.form_text``, so
no endpoint, POST, PATCH or PUT, can receive a value the database or the response encoder
would choke on. The fields are then checked by the endpoints with the same module.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from services.common import validation
from services.common.exceptions import Invalid


class InvalidBody(HTTPException):
    """Raised while FastAPI reads the body; an HTTPException so that FastAPI passes it on (it
    turns other errors met there into a message of its own) to the 400 handler."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class CheckedJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = validation.parse_json(await self.body())
            except Invalid as exc:
                raise InvalidBody(exc.message) from None
        return self._json

    async def _get_form(self, **limits: Any) -> FormData:
        form = await super()._get_form(**limits)
        try:
            return FormData([(key, validation.form_text(key, value) if isinstance(value, str)
                              else value) for key, value in form.multi_items()])
        except Invalid as exc:
            await form.close()
            raise InvalidBody(exc.message) from None


class CheckedJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked_handler(request: Request) -> Response:
            return await handler(CheckedJSONRequest(request.scope, request.receive))

        return checked_handler


def api_router(**options: Any) -> APIRouter:
    return APIRouter(route_class=CheckedJSONRoute, **options)
