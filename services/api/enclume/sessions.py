"""/enclume/v1/sessions and /enclume/v1/occurrences: a room's timetable. Teachers create,
change and delete sessions in their rooms; occurrences are read-only here (the timetable runner
moves their state)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import select

from services.api.deps import database
from services.api.enclume.common import PREFIX, identity, lead_policy, limits, listing, now
from services.api.enclume.views import (
    OCCURRENCE_FIELDS,
    SESSION_FIELDS,
    occurrence_document,
    session_document,
)
from services.api.responses import rendered
from services.api.routing import api_router
from services.classroom import session_changes, sessions
from services.classroom.access import find_in_room, find_room, room_visible_to
from services.classroom.fields import OCCURRENCE_STATES, choice
from services.classroom.plans import room_plan
from services.common.classroom_models import ClassSession, Occurrence, Room
from services.common.db import Database
from services.common.identity import Identity

router = api_router(include_in_schema=False)  # not Ironic: kept out of its OpenAPI document


def _find(session: Any, caller: Identity, ident: str) -> ClassSession:
    found: ClassSession = find_in_room(session, caller, ClassSession, ident, "Session")
    return found


def _document(request: Request, session: Any, cls_session: ClassSession, at: datetime
              ) -> dict[str, Any]:
    plan = room_plan(session, cls_session.room, at, lead_policy(request), cls_session)
    return session_document(request, cls_session, at, plan)


@router.get(f"{PREFIX}/sessions")
def list_sessions(request: Request, caller: Identity = Depends(identity),
                  db: Database = Depends(database)) -> dict[str, Any]:
    at = now()
    with db.session() as session:
        statement = select(ClassSession).join(Room).where(room_visible_to(caller))
        if room := request.query_params.get("room"):
            statement = statement.where(ClassSession.room_id == find_room(session, caller,
                                                                           room).id)
        return listing(request, session, statement, ClassSession, "sessions", "sessions",
                       SESSION_FIELDS, {"created_at", "starts_at"},
                       lambda s: _document(request, session, s, at))


@router.get(f"{PREFIX}/sessions/{{ident}}")
def show_session(ident: str, request: Request, caller: Identity = Depends(identity),
                 db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        return _document(request, session, _find(session, caller, ident), now())


@router.post(f"{PREFIX}/sessions", status_code=201)
def create_session(request: Request, body: Any = Body(...),
                   caller: Identity = Depends(identity),
                   db: Database = Depends(database)) -> Response:
    at = now()
    with db.session() as session:
        created = sessions.create_session(session, caller, body, now=at,
                                          limits=limits(request))
        document = _document(request, session, created, at)
    return rendered(document, 201, {"Location": document["links"][0]["href"]})


@router.patch(f"{PREFIX}/sessions/{{ident}}")
def update_session(ident: str, request: Request, body: Any = Body(...),
                   caller: Identity = Depends(identity),
                   db: Database = Depends(database)) -> dict[str, Any]:
    at = now()
    with db.session() as session:
        changed = session_changes.update_session(session, caller, ident, body, now=at,
                                                 limits=limits(request))
        return _document(request, session, changed, at)


@router.delete(f"{PREFIX}/sessions/{{ident}}", status_code=204)
def delete_session(ident: str, caller: Identity = Depends(identity),
                   db: Database = Depends(database)) -> Response:
    with db.session() as session:
        session.delete(_find(session, caller, ident))
    return Response(status_code=204)


@router.get(f"{PREFIX}/occurrences")
def list_occurrences(request: Request, caller: Identity = Depends(identity),
                     db: Database = Depends(database)) -> dict[str, Any]:
    params = request.query_params
    with db.session() as session:
        statement = select(Occurrence).join(ClassSession).join(Room).where(
            room_visible_to(caller))
        if ident := params.get("session"):
            statement = statement.where(Occurrence.session_id == _find(session, caller,
                                                                        ident).id)
        if room := params.get("room"):
            statement = statement.where(Room.id == find_room(session, caller, room).id)
        if state := params.get("state"):
            statement = statement.where(Occurrence.state == choice("state", state,
                                                                    OCCURRENCE_STATES))
        return listing(request, session, statement, Occurrence, "occurrences", "occurrences",
                       OCCURRENCE_FIELDS, {"planned_start", "state"}, occurrence_document)
