"""/enclume/v1/jobs: room actions (``POST /rooms/{room}/actions``), their per-PC progress,
and the retry of a failed PC. The API only records them: the conductor that owns the room on
the hash ring drives them (services/conductor/room_jobs.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from services.api.deps import database
from services.api.enclume.common import PREFIX, identity, listing, now
from services.api.enclume.views import JOB_FIELDS, job_document
from services.api.responses import rendered
from services.api.routing import api_router
from services.classroom import jobs
from services.classroom.access import find_in_room, find_room, room_visible_to
from services.common.classroom_models import Job, Room
from services.common.db import Database
from services.common.identity import Identity

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


def _find_job(session: Session, caller: Identity, ident: str) -> Job:
    job: Job = find_in_room(session, caller, Job, ident, "Job")
    return job


def _accepted(request: Request, job: Job) -> Response:
    document = job_document(request, job)
    return rendered(document, 202, {"Location": document["links"][0]["href"]})


@router.get(f"{PREFIX}/jobs/{{ident}}")
def show_job(ident: str, request: Request, caller: Identity = Depends(identity),
             db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        return job_document(request, _find_job(session, caller, ident))


@router.post(f"{PREFIX}/rooms/{{ident}}/actions", status_code=202)
def room_action(ident: str, request: Request, body: Any = Body(...),
                caller: Identity = Depends(identity),
                db: Database = Depends(database)) -> Response:
    """Wake, restore, power off or log out (of the class VLAN) a room's PCs (all, or those
    named): a job, 202."""
    with db.session() as session:
        room = find_room(session, caller, ident)
        job = jobs.create_job(session, room, body, requested_by=caller.user, now=now())
        return _accepted(request, job)


@router.post(f"{PREFIX}/jobs/{{ident}}/pcs/{{node}}/retry", status_code=202)
def retry_pc(ident: str, node: str, request: Request, caller: Identity = Depends(identity),
             db: Database = Depends(database)) -> Response:
    """Queue one failed PC of a job again; the job's other PCs are left as they are."""
    with db.session() as session:
        job = _find_job(session, caller, ident)
        jobs.retry_pc(session, job, node)
        return _accepted(request, job)
