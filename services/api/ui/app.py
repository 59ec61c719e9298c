"""Mounting the web page in the API application: its routes, static files and error pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.api.login_limit import LoginLimiter
from services.api.ui import catalogue, pages, room_pages, stream, timetable
from services.api.ui.cookies import COOKIE, SessionCookies, secret_key
from services.api.ui.web import (
    PREFIX,
    BadCsrf,
    LoginRequired,
    PageNotFound,
    WebUI,
    login_url,
    render,
)
from services.common.config import Settings
from services.common.identity import IdentitySource

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI, settings: Settings, source: IdentitySource | None) -> None:
    app.state.ui = WebUI(
        source=source,
        cookies=SessionCookies(secret_key(settings), settings.ui.session_hours * 3600),
        limiter=LoginLimiter(settings.ui.login_attempts, settings.ui.login_window_s))
    for router in (pages.router, stream.router, room_pages.router, timetable.router,
                   catalogue.router):
        app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="ui-static")

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        target = login_url(request)
        if COOKIE in request.cookies:
            target += "&expired=1"
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        if request.method != "GET" or request.headers.get("accept") == "text/event-stream":
            return Response(status_code=401)
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(PageNotFound)
    async def not_found(request: Request, _exc: PageNotFound) -> Response:
        return render(request, "not_found.html", status=404)

    @app.exception_handler(BadCsrf)
    async def bad_csrf(request: Request, _exc: BadCsrf) -> Response:
        return render(request, "refused.html", status=403)
