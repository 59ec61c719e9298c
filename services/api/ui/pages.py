"""Logging in and out, the language switch, and the list of the visitor's rooms."""

from __future__ import annotations

from fastapi import Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import select

from services.api.routing import api_router
from services.api.ui.cookies import new_session
from services.api.ui.i18n import LANGUAGE_COOKIE, LANGUAGES
from services.api.ui.web import (
    PREFIX,
    Visitor,
    check_csrf,
    database,
    redirect,
    render,
    safe_next,
    ui_of,
    visitor,
)
from services.classroom.access import visible_rooms
from services.common.classroom_models import Room
from services.common.db import Database
from services.common.identity import DirectoryUnavailable

router = api_router(include_in_schema=False)


@router.get(PREFIX)
@router.get(f"{PREFIX}/")
def home(request: Request) -> Response:
    return redirect(request, f"{PREFIX}/rooms")


@router.get(f"{PREFIX}/login")
def login_page(request: Request, next: str = "", expired: bool = False) -> Response:
    ui = ui_of(request)
    if ui.source is None:
        return redirect(request, safe_next(next))
    session = ui.cookies.read(request)
    if session is None or session.user is not None:
        session = new_session(None)
    response = render(request, "login.html", session=session, next=safe_next(next),
                      expired=expired)
    ui.cookies.write(request, response, session)
    return response


@router.post(f"{PREFIX}/login")
def login(request: Request, user: str = Form(""), password: str = Form(""),
          csrf: str = Form(""), next: str = Form("")) -> Response:
    ui = ui_of(request)
    session = ui.cookies.read(request)
    check_csrf(session, csrf)
    if ui.source is None:
        return redirect(request, safe_next(next))
    address = request.client.host if request.client else "?"
    if ui.limiter.blocked(user, address):
        return render(request, "login.html", status=429, session=session,
                      next=safe_next(next), error="Too many failed attempts: wait a few "
                      "minutes and try again.", user=user)
    try:
        identity = ui.source.authenticate(user, password) if user and password else None
    except DirectoryUnavailable:
        return render(request, "login.html", status=503, session=session,
                      next=safe_next(next), error="The user directory cannot be reached: try "
                      "again in a few minutes.", user=user)
    if identity is None:
        ui.limiter.failed(user, address)
        return render(request, "login.html", status=401, session=session,
                      next=safe_next(next), error="Wrong user name or password.", user=user)
    ui.limiter.succeeded(user)
    response = redirect(request, safe_next(next))
    ui.cookies.write(request, response, new_session(identity.user))  # a new CSRF token too
    return response


@router.post(f"{PREFIX}/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    ui = ui_of(request)
    check_csrf(ui.cookies.read(request), csrf)
    response = redirect(request, f"{PREFIX}/login")
    ui.cookies.clear(response)
    return response


@router.get(f"{PREFIX}/language/{{code}}")
def choose_language(code: str, request: Request, next: str = "") -> Response:
    response = redirect(request, safe_next(next))
    if code in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, code, max_age=365 * 86400, path=PREFIX,
                            samesite="lax", httponly=True,
                            secure=request.url.scheme == "https")
    return response


@router.get(f"{PREFIX}/rooms")
def rooms_page(request: Request, who: Visitor = Depends(visitor),
               db: Database = Depends(database)) -> Response:
    with db.session() as session:
        rooms = session.scalars(visible_rooms(select(Room), who.identity).order_by(Room.name))
        listed = [{"name": r.name, "description": r.description, "pcs": len(r.pcs),
                   "time_zone": r.time_zone} for r in rooms]
    return render(request, "rooms.html", session=who.session, identity=who.identity,
                  rooms=listed)
