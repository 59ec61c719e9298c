"""/enclume/v1/events: Server-Sent Events of the changes of room jobs and their PCs.

The API process polls the database (every ``POLL_S``) for jobs created or changed since its
last look, in the rooms the caller may see (one room with ``?room=R``), and sends:

- ``event: job``: the job document, when a job appears or changes (its state, a PC of it);
- ``event: pc``: ``{"job": uuid, "room": name, **pc}`` for each PC row that changed.

A comment line every ``services.api.sse.KEEPALIVE_S`` keeps proxies from closing a quiet stream.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from services.api.deps import database
from services.api.enclume.common import PREFIX, identity
from services.api.enclume.views import job_document
from services.api.routing import api_router
from services.api.sse import polling_stream
from services.classroom.access import find_room, room_visible_to
from services.common.classroom_models import Job, JobPC, Room
from services.common.db import Database
from services.common.identity import Identity
from services.common.models import utcnow

router = api_router(include_in_schema=False)  # not Ironic: kept out of its OpenAPI document

POLL_S = 0.5
OVERLAP = timedelta(seconds=2)  # rows committed a little after their timestamp are not missed


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class JobWatcher:
    """The job documents that changed since the last look, each sent once per change."""

    def __init__(self, request: Request, db: Database, caller: Identity,
                 room_id: int | None) -> None:
        self.request, self.db, self.caller, self.room_id = request, db, caller, room_id
        self.sent: dict[str, dict[str, Any]] = {}
        self.since: datetime = utcnow()

    def changes(self) -> list[str]:
        look_from, self.since = self.since - OVERLAP, utcnow()
        changed_pcs = select(JobPC.job_id).where(JobPC.updated_at >= look_from)
        statement = select(Job).join(Room).where(
            room_visible_to(self.caller),
            or_(Job.created_at >= look_from, Job.updated_at >= look_from,
                Job.id.in_(changed_pcs))).options(selectinload(Job.pcs)).order_by(Job.id)
        if self.room_id is not None:
            statement = statement.where(Job.room_id == self.room_id)
        messages: list[str] = []
        with self.db.session() as session:
            for job in session.scalars(statement):
                document = job_document(self.request, job)
                messages += self._diff(document)
        return messages

    def _diff(self, document: dict[str, Any]) -> list[str]:
        before = self.sent.get(document["uuid"])
        if before == document:
            return []
        self.sent[document["uuid"]] = document
        old_pcs = {pc["node_uuid"]: pc for pc in (before or {}).get("pcs", [])}
        messages = [sse("job", document)]
        messages += [sse("pc", {"job": document["uuid"], "room": document["room"], **pc})
                     for pc in document["pcs"] if old_pcs.get(pc["node_uuid"]) != pc]
        return messages


@router.get(f"{PREFIX}/events")
def events(request: Request, caller: Identity = Depends(identity),
           db: Database = Depends(database)) -> StreamingResponse:
    room_id = None
    if room := request.query_params.get("room"):
        with db.session() as session:
            room_id = find_room(session, caller, room).id  # 404 before the stream starts
    watcher = JobWatcher(request, db, caller, room_id)

    return polling_stream(request, watcher.changes, "enclume events", lambda: POLL_S)
