"""/enclume/v1/jobs: room actions and their per-PC progress, read-only (the room restore
runner creates and moves them)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from services.api.deps import database
from services.api.enclume.common import PREFIX, identity, listing
from services.api.enclume.views import JOB_FIELDS, job_document
from services.api.routing import api_router
from services.classroom.access import find_room, room_visible_to
from services.common.classroom_models import Job, Room
from services.common.db import Database
from services.common.exceptions import NotFound
from services.common.identity import Identity
from services.common.validation import is_uuid

router = api_router(include_in_schema=False)  # not Ironic: kept out of its OpenAPI document


@router.get(f"{PREFIX}/jobs")
def list_jobs(request: Request, caller: Identity = Depends(identity),
              db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        statement = select(Job).join(Room).where(room_visible_to(caller)).options(
            selectinload(Job.pcs))
        if room := request.query_params.get("room"):
            statement = statement.where(Job.room_id == find_room(session, caller, room).id)
        return listing(request, session, statement, Job, "jobs", "jobs", JOB_FIELDS,
                       {"created_at", "state", "kind"}, lambda j: job_document(request, j))


@router.get(f"{PREFIX}/jobs/{{ident}}")
def show_job(ident: str, request: Request, caller: Identity = Depends(identity),
             db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        job = session.scalar(select(Job).join(Room).where(
            Job.uuid == ident.lower(), room_visible_to(caller))) if is_uuid(ident) else None
        if job is None:
            raise NotFound(f"Job {ident} could not be found.")
        return job_document(request, job)
