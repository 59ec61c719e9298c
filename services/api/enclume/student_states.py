"""/enclume/v1/student-states: students' saved states, private to their owner.

The owner lists, renames and deletes their own; the teachers of the room a state was saved in
(and staff) list, pin and delete it, never read or resume it; anyone else gets 404, by id too.
States are recorded by the end-of-session capture (services/classroom/student_states.py), not
created here; their blocks are never served through this API.
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.api.deps import database
from services.api.enclume.common import PREFIX, any_user, link, listing
from services.api.enclume.stores import image_store
from services.api.routing import api_router
from services.api.views import timestamp
from services.classroom import student_states as states
from services.classroom.image_versions import forget_in_store
from services.common.db import Database
from services.common.identity import Identity
from services.common.state_models import StudentState

router = api_router(include_in_schema=False)
STATE_FIELDS = ["uuid", "owner", "label", "image", "image_version", "version", "room",
                "size_bytes", "pinned", "created_at", "last_used_at", "links"]


def state_document(request: Request, state: StudentState) -> dict[str, Any]:
    version = state.image_version
    return {"uuid": state.uuid, "owner": state.owner, "label": state.label,
            "image": version.image.name, "image_version": version.uuid,
            "version": version.version, "room": state.room.name if state.room else None,
            "size_bytes": state.size_bytes, "pinned": state.pinned,
            "created_at": timestamp(state.created_at),
            "last_used_at": timestamp(state.last_used_at),
            "links": link(request, f"student-states/{state.uuid}")}


@router.get(f"{PREFIX}/student-states")
def list_states(request: Request, caller: Identity = Depends(any_user),
                db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        statement = select(StudentState).where(states.state_visible_to(caller))
        if owner := request.query_params.get("owner"):
            statement = statement.where(StudentState.owner == owner)
        return listing(request, session, statement, StudentState, "student_states",
                       "student-states", STATE_FIELDS,
                       {"created_at", "last_used_at", "size_bytes", "owner", "label"},
                       lambda s: state_document(request, s))


def _find(session: Session, caller: Identity, ident: str) -> StudentState:
    return states.find_state(session, caller, ident)


@router.get(f"{PREFIX}/student-states/{{ident}}")
def show_state(ident: str, request: Request, caller: Identity = Depends(any_user),
               db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        return state_document(request, _find(session, caller, ident))


@router.patch(f"{PREFIX}/student-states/{{ident}}")
def update_state(ident: str, request: Request, body: Any = Body(...),
                 caller: Identity = Depends(any_user),
                 db: Database = Depends(database)) -> dict[str, Any]:
    """``label`` (the owner), ``pinned`` (a teacher of the class: kept past the retention)."""
    with db.session() as session:
        state = _find(session, caller, ident)
        states.update_state(state, caller, body)
        session.flush()
        return state_document(request, state)


@router.delete(f"{PREFIX}/student-states/{{ident}}", status_code=204)
def delete_state(ident: str, request: Request, caller: Identity = Depends(any_user),
                 db: Database = Depends(database)) -> Response:
    with db.session() as session:
        state = _find(session, caller, ident)
        store_id = state.store_id
        session.delete(state)
    forget_in_store(image_store(request), store_id)
    return Response(status_code=204)
