"""What every page shares: the templates, who is logged in, the CSRF check, and the answers
for a visitor who is not logged in (the login page) or asks for what is not theirs (404)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.api.login_limit import LoginLimiter
from services.api.ui.cookies import SessionCookies, WebSession, csrf_matches, new_session
from services.api.ui.i18n import LANGUAGES, language_of, translator
from services.api.ui.status import power_words, reason_words, state_words, tone
from services.classroom.access import require_classroom_user
from services.common.config import Settings
from services.common.db import Database
from services.common.exceptions import Forbidden
from services.common.identity import ANONYMOUS_ADMIN, Identity, IdentitySource

if TYPE_CHECKING:
    from jinja2 import Environment

PREFIX = "/ui"


@cache
def environment() -> Environment:
    """The templates, loaded at the page's first use: a process whose page no one opens never
    imports jinja2 (the side-by-side benchmark's memory, docs/benchmarks.md)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    templates = Environment(loader=PackageLoader("services.api.ui", "templates"),
                            autoescape=select_autoescape(default=True), trim_blocks=True,
                            lstrip_blocks=True)
    templates.filters.update(state_words=state_words, power_words=power_words, tone=tone,
                             reason_words=reason_words)
    return templates


@dataclass
class WebUI:
    """The web page's parts, kept in ``app.state.ui``."""

    source: IdentitySource | None  # None: authentication is off, everyone is an admin
    cookies: SessionCookies
    limiter: LoginLimiter


class LoginRequired(Exception):
    """No valid session: the answer is the login page (after which the page asked for)."""


class PageNotFound(Exception):
    """A room or job that does not exist or is not the caller's: an HTML 404."""


class BadCsrf(Exception):
    """A POST without the session's CSRF token: refused with 403, nothing done."""


@dataclass(frozen=True)
class Visitor:
    identity: Identity
    session: WebSession


def database(request: Request) -> Database:
    # services.api.deps has the same, but it names the conductor's interface (for typing),
    # which the web page's import contract keeps out of reach.
    db: Database = request.app.state.db
    return db


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def ui_of(request: Request) -> WebUI:
    ui: WebUI = request.app.state.ui
    return ui


def visitor(request: Request) -> Visitor:
    """The logged-in classroom user (admin, operator, teacher); LoginRequired otherwise."""
    ui = ui_of(request)
    session = ui.cookies.read(request)
    if ui.source is None:
        return Visitor(ANONYMOUS_ADMIN, session or new_session(ANONYMOUS_ADMIN.user))
    identity = ui.source.identity_of(session.user) if session and session.user else None
    if identity is None or session is None:
        raise LoginRequired()
    try:
        require_classroom_user(identity)
    except Forbidden:
        raise LoginRequired() from None
    return Visitor(identity, session)


def check_csrf(session: WebSession | None, token: str | None) -> None:
    if not csrf_matches(session, token):
        raise BadCsrf()


def render(request: Request, template: str, *, status: int = 200,
           session: WebSession | None = None, identity: Identity | None = None,
           **context: Any) -> HTMLResponse:
    language = language_of(request)
    page = environment().get_template(template).render(
        _=translator(language), lang=language, languages=LANGUAGES,
        path=request.url.path, csrf=session.csrf if session else "",
        identity=identity, authenticated=ui_of(request).source is not None, **context)
    response = HTMLResponse(page, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def fragment(template: str, language: str, **context: Any) -> str:
    return environment().get_template(template).render(_=translator(language), **context)


def redirect(request: Request, url: str) -> Response:
    """303 to ``url``; htmx requests follow ``HX-Redirect`` instead of swapping the page in."""
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def login_url(request: Request) -> str:
    return f"{PREFIX}/login?next={quote(request.url.path)}"


def safe_next(target: str | None) -> str:
    """Only a path of the web page: never another site (an open redirect)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return f"{PREFIX}/rooms"
