"""Room actions as jobs: the checks of a request (PCs of the room, image allowed, no restore
during a session unless forced) and the job rows it leaves; a failed PC retried alone.

The API only records a job (state ``pending``, each PC ``queued``); the conductor that owns the
room on the hash ring drives it (services/conductor/room_jobs.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.classroom import fields
from services.classroom.images import find_image, find_version
from services.classroom.networks import class_vlan_pcs
from services.classroom.pc_logins import clear_login
from services.classroom.times import as_utc
from services.common.classroom_models import (
    ClassSession,
    ImageVersion,
    Job,
    JobPC,
    Occurrence,
    Room,
)
from services.common.exceptions import Conflict, Invalid, NotFound
from services.common.models import Node
from services.common.validation import is_uuid, shown

ACTION_FIELDS = frozenset({"action", "pcs", "image", "force", "discard_unsaved"})
QUEUED = "queued"
ACTIVE_JOB_STATES = ("pending", "running")
FORCED_DELTA = "restore-delta"  # a restore that asks the agent for delta whatever the PC had
RESTORE_KINDS = ("restore", FORCED_DELTA)
ENDED_JOB_STATES = ("done", "failed-partly", "failed")
# The PCs on the class VLAN go back to the idle VLAN and their logins end (work not yet saved
# stays recorded for their next restore): a teacher's action, or a class's end with ``after:
# nothing``.
LOG_OUT = "log-out"


def _pcs(room: Room, wanted: Any) -> list[str]:
    """The node UUIDs of the PCs named (by name or UUID), all of the room's by default."""
    by_ident = {pc.node.uuid: pc.node.uuid for pc in room.pcs}
    by_ident.update({pc.node.name: pc.node.uuid for pc in room.pcs if pc.node.name})
    if wanted is None:
        chosen = [pc.node.uuid for pc in room.pcs]
    elif not isinstance(wanted, list) or not all(isinstance(i, str) for i in wanted):
        raise Invalid("Invalid value for pcs: expected a list of PC names or UUIDs.")
    else:
        unknown = [i for i in wanted if by_ident.get(i.lower() if is_uuid(i) else i) is None]
        if unknown:
            raise Invalid(f"PC(s) {', '.join(shown(i) for i in unknown)} are not in room "
                          f"{room.name}.")
        chosen = list(dict.fromkeys(by_ident[i.lower() if is_uuid(i) else i] for i in wanted))
    if not chosen:
        raise Invalid(f"Room {room.name} has no PCs to act on.")
    return chosen


def _image(session: Session, room: Room, reference: Any) -> ImageVersion:
    """``NAME[:VERSION]`` or a version's UUID (a bare name: its newest version), allowed in
    the room; the room's default image when ``reference`` is None."""
    version: ImageVersion | None = None
    if reference is None:
        if room.default_image is None:
            raise Invalid(f"Room {room.name} has no default image: name one with \"image\".")
        image = room.default_image
    elif not isinstance(reference, str):
        raise Invalid(f"Invalid image {shown(reference)}: expected NAME[:VERSION].")
    elif ":" in reference or is_uuid(reference):
        version = find_version(session, reference)
        image = version.image
    else:
        try:
            image = find_image(session, reference)
        except NotFound:
            raise Invalid(f"Image {shown(reference)} could not be found.") from None
    if image.id not in {a.image_id for a in room.allowed_images}:
        raise Invalid(f"Image {image.name} is not allowed in room {room.name}.")
    if version is None:
        if not image.versions:
            raise Invalid(f"Image {image.name} has no version to restore.")
        version = image.versions[-1]
    return version


def session_in_progress(session: Session, room: Room, now: datetime) -> Occurrence | None:
    now = as_utc(now).replace(tzinfo=None)  # occurrences hold naive UTC instants
    return session.scalar(select(Occurrence).join(ClassSession).where(
        ClassSession.room_id == room.id, Occurrence.planned_start <= now,
        Occurrence.planned_end > now, Occurrence.state.not_in(("missed", "cancelled"))))


def create_job(session: Session, room: Room, body: Any, *, requested_by: str | None,
               now: datetime, occurrence: Occurrence | None = None) -> Job:
    """A room action from a request body, recorded as a pending job; Invalid/Conflict and
    nothing stored when the request cannot run."""
    values = fields.known_keys("room action", body, ACTION_FIELDS)
    kind = fields.choice("action", values.get("action"), fields.JOB_KINDS)
    force = values.get("force", False)
    if not isinstance(force, bool):
        raise Invalid(f"Invalid value for force: {shown(force)}; true or false.")
    pcs = _pcs(room, values.get("pcs"))
    version = None
    if kind in RESTORE_KINDS:
        version = _image(session, room, values.get("image"))
        running = session_in_progress(session, room, now) if occurrence is None else None
        if running is not None and not force:
            raise Conflict(f"Room {room.name} is in a session until "
                           f"{running.planned_end.isoformat()}Z; use force to restore anyway.")
    elif values.get("image") is not None:
        raise Invalid(f"A {kind} action takes no image.")
    _discard_unsaved(session, kind, values.get("discard_unsaved", False), pcs)
    if kind == LOG_OUT:
        pcs = on_class_vlan(room, pcs)
    job = Job(room_id=room.id, kind=kind, requested_by=requested_by, state="pending",
              image_version_id=version.id if version else None,
              occurrence_id=occurrence.id if occurrence else None)
    job.pcs = [JobPC(node_uuid=uuid, step=QUEUED) for uuid in pcs]
    session.add(job)
    session.flush()
    return job


def on_class_vlan(room: Room, pcs: list[str]) -> list[str]:
    """Those of ``pcs`` on the room's class VLAN now; Conflict when none is (nothing to log
    out: the others rest on the idle VLAN already, or are being provisioned there)."""
    there = set(class_vlan_pcs(room))
    chosen = [uuid for uuid in pcs if uuid in there]
    if not chosen:
        raise Conflict(f"None of the chosen PCs of room {room.name} is on its class VLAN: "
                       "there is nothing to log out.")
    return chosen


def _discard_unsaved(session: Session, kind: str, discard: Any, pcs: list[str]) -> None:
    """A teacher's confirmation that the logged-in students' work on these PCs is dropped (a
    save that failed, the store full): their logins are forgotten, so the job saves nothing."""
    if not isinstance(discard, bool):
        raise Invalid(f"Invalid value for discard_unsaved: {shown(discard)}; true or false.")
    if not discard:
        return
    if kind not in (*RESTORE_KINDS, "power-off"):
        raise Invalid(f"A {kind} action saves nothing: discard_unsaved belongs to restores "
                      "and power-offs.")
    for node in session.scalars(select(Node).where(Node.uuid.in_(pcs))):
        clear_login(node)


def retry_pc(session: Session, job: Job, node_ident: str) -> JobPC:
    """Queue a failed PC of a job again (by node UUID or name); Conflict unless it failed."""
    row = next((pc for pc in job.pcs if pc.node_uuid == node_ident.lower()), None)
    if row is None:
        named = {pc.node.uuid for pc in job.room.pcs if pc.node.name == node_ident}
        row = next((pc for pc in job.pcs if pc.node_uuid in named), None)
    if row is None:
        raise NotFound(f"PC {node_ident} is not in job {job.uuid}.")
    if row.outcome != "failed":
        raise Conflict(f"PC {node_ident} of job {job.uuid} has not failed "
                       f"(outcome {row.outcome or 'none yet'}); only a failed PC is retried.")
    row.outcome, row.error, row.step = None, None, QUEUED
    row.percent = row.bytes_done = row.bytes_total = None
    row.restore_mode = row.fetched_bytes = row.image_bytes = None
    job.state = "running"
    session.flush()
    return row
