"""POST /enclume/v1/session-service/{node}/save-and-log-out: a student's "save and log out" in
the deployed OS (its session service calls it, docs/session-service.md).

Authenticated as the session service's heartbeat is (the deploy's bearer token; 401 otherwise).
The PC's logged-in student's work is saved as every session's end saves it: a one-PC
``power-off`` job of its room, which rebuilds the PC to capture the state first, restores it
and leaves it off (docs/architecture.md "Students' states"). 409 when nobody's work is there
to save (no student logged in, a teacher's maintenance) or the PC is in no room.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select

from services.api.deps import database
from services.api.enclume.common import now
from services.api.enclume.session_service import PATH_PREFIX, REFUSED, _token
from services.api.routing import api_router
from services.classroom import jobs
from services.classroom.state_capture import logged_in
from services.common import session_service
from services.common.classroom_models import Room, RoomPC
from services.common.db import Database
from services.common.exceptions import Conflict, EnclumeError
from services.common.lookups import by_uuid_or_name
from services.common.models import Node

router = api_router(include_in_schema=False)


@router.post(f"{PATH_PREFIX}{{node}}/save-and-log-out", status_code=202)
def save_and_log_out(node: str, request: Request,
                     db: Database = Depends(database)) -> dict[str, Any]:
    token = _token(request)
    with db.session() as session:
        found = session.scalar(select(Node).where(by_uuid_or_name(Node, node)))
        try:
            session_service.authenticate(session, found.id if found else -1, token)
        except session_service.BadToken:
            raise EnclumeError(REFUSED, code=401) from None
        assert found is not None
        login = logged_in(found.driver_internal_info)
        if login is None:
            raise Conflict(f"Nobody's work is to be saved at node {found.uuid}: no student is "
                           "logged in there.")
        room = session.scalar(select(Room).join(RoomPC).where(RoomPC.node_id == found.id))
        if room is None:
            raise Conflict(f"Node {found.uuid} is in no room: its work cannot be saved.")
        job = jobs.create_job(session, room, {"action": "power-off", "pcs": [found.uuid]},
                              requested_by=f"{login['user']} (save and log out)", now=now())
        return {"job": job.uuid, "user": login["user"], "node": found.uuid}
