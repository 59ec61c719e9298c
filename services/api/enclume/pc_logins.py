"""POST /enclume/v1/pc-logins: a user logs in at a PC's boot prompt (the deploy ramdisk).

The PC's agent calls it over TLS with its token (``X-Agent-Token``, no user of its own: a public
prefix of the auth middleware) and the user's name and password; the answer is the class on in
the room and the user's choices (services/classroom/pc_logins.py). Failed logins are limited
per user name and per PC (services/api/login_limit.py, the web page's limiter), before any
password check. The password is checked by the API's one identity source and appears in no
answer and no log.
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request
from fastapi.responses import JSONResponse

from services.api.deps import database
from services.api.enclume.common import PREFIX, now
from services.api.enclume.student_states import state_document
from services.api.errors import error_response
from services.api.login_limit import LoginLimiter
from services.api.routing import api_router
from services.classroom import pc_logins
from services.classroom.fields import known_keys
from services.common.db import Database
from services.common.exceptions import Conflict, Invalid
from services.common.identity import DirectoryUnavailable, IdentitySource

router = api_router(include_in_schema=False)
PATH = f"{PREFIX}/pc-logins"
TOKEN_HEADER = "X-Agent-Token"
MAX_CREDENTIAL = 1024


def limiter_for(settings: Any) -> LoginLimiter:
    return LoginLimiter(settings.pc_login.attempts, settings.pc_login.window_s,
                        address_attempts=settings.pc_login.pc_attempts)


def _credential(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value or len(value) > MAX_CREDENTIAL:
        raise Invalid(f"'{key}' must be a non-empty string.")
    return value


def _refused(status: int, message: str, retry_s: int | None = None) -> JSONResponse:
    return error_response(status, message,
                          {"Retry-After": str(retry_s)} if retry_s is not None else None)


@router.post(PATH)
def pc_login(request: Request, body: Any = Body(...),
             db: Database = Depends(database)) -> Any:
    body = known_keys("PC login", body, frozenset({"node", "user", "password"}))
    user, password = _credential(body, "user"), _credential(body, "password")
    source: IdentitySource | None = request.app.state.identity_source
    limiter: LoginLimiter = request.app.state.pc_login_limiter
    with db.session() as session:
        place = pc_logins.place_of(session, body.get("node"), request.headers.get(TOKEN_HEADER),
                                   now())
        node_uuid = place.node.uuid
    if source is None:
        raise Conflict("This Enclume runs without authentication: logins at a PC need "
                       "ENCLUME_AUTH_STRATEGY users_file or ldap.")
    if limiter.blocked(user, node_uuid):
        return _refused(429, "Too many failed attempts: wait a few minutes and try again.",
                        int(limiter.window_s))
    try:
        identity = source.authenticate(user, password)
    except DirectoryUnavailable:
        return _refused(503, "The user directory cannot be reached: try again in a few "
                             "minutes (teachers with a local account may still log in).", 30)
    if identity is None:
        limiter.failed(user, node_uuid)
        return _refused(401, "Wrong user name or password.")
    limiter.succeeded(user)
    with db.session() as session:
        place = pc_logins.place_of(session, node_uuid, request.headers.get(TOKEN_HEADER), now())
        choices = pc_logins.choices(session, identity, place)
        current = place.class_session
        return {
            "user": identity.user, "roles": sorted(identity.roles), "node": node_uuid,
            "room": place.room.name,
            "session": None if current is None else {
                "uuid": current.uuid, "name": current.name,
                "image": current.image_version.image.name,
                "image_version": current.image_version.uuid,
                "version": current.image_version.version},
            "choices": [{**c, "state": state_document(request, c["state"])} if "state" in c
                        else c for c in choices],
            # Sent back with the choice (pc_login_choice.py): no second password check.
            "ticket": request.app.state.pc_login_tickets.issue(identity, node_uuid)}
