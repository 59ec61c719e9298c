"""A room's page: its PCs live, the actions on them (confirmed first), the retry of failed PCs,
and the room's recent jobs. Actions go through the classroom layer, as the JSON API's do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from services.api.routing import api_router
from services.api.ui.status import room_statuses
from services.api.ui.web import (
    PREFIX,
    PageNotFound,
    Visitor,
    check_csrf,
    database,
    redirect,
    render,
    settings_of,
    visitor,
)
from services.classroom import jobs, rooms
from services.classroom.access import find_room
from services.classroom.login_policy import applied
from services.common.classroom_models import Job, Room
from services.common.db import Database
from services.common.exceptions import Conflict, Forbidden, Invalid, NotFound
from services.common.identity import Identity

router = api_router(include_in_schema=False)
ACTIONS = ("wake", "restore", "power-off", jobs.LOG_OUT)
NOTICES = {"started": "Started: {action} of {count} PCs.",
           "retried": "Retried {count} failed PCs.", "nothing-to-retry": "No failed PC to retry.",
           "laid-out": "The room's layout is saved.",
           "logins-saved": "The logins at the PCs are saved."}
# The login form's words for a room's pc_logins ("default": null, the setting decides).
LOGIN_SWITCH = {"default": None, "on": True, "off": False}
HISTORY_LENGTH = 30


def room_of(session: Session, identity: Identity, ident: str) -> Room:
    try:
        return find_room(session, identity, ident)
    except NotFound:
        raise PageNotFound() from None


def image_choices(room: Room) -> list[str]:
    """``IMAGE:VERSION`` of every version the room allows, newest first, the default first."""
    allowed = sorted((a.image for a in room.allowed_images),
                     key=lambda image: (image != room.default_image, image.name))
    return [f"{image.name}:{v.version}" for image in allowed for v in reversed(image.versions)]


def room_view(request: Request, who: Visitor, session: Session, room: Room, *,
              status: int = 200, error: str | None = None) -> Response:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    action = request.query_params.get("action", "")
    settings = settings_of(request)
    return render(request, "room.html", status=status, session=who.session,
                  identity=who.identity, room=room, pcs=room_statuses(session, room),
                  images=image_choices(room), error=error, notice=notice,
                  logins=applied(room.name, room.pc_logins, room.login_language, settings),
                  login_defaults=applied(room.name, None, None, settings),
                  notice_action=action if action in ACTIONS else "",
                  notice_count=_count(request.query_params.get("count")))


def _count(text: str | None) -> int:
    return int(text) if text and text.isdigit() and len(text) < 6 else 0


@router.get(f"{PREFIX}/rooms/{{ident}}")
def room_page(ident: str, request: Request, who: Visitor = Depends(visitor),
              db: Database = Depends(database)) -> Response:
    with db.session() as session:
        return room_view(request, who, session, room_of(session, who.identity, ident))


def _local_end(room: Room, end: datetime) -> str:
    return end.replace(tzinfo=UTC).astimezone(ZoneInfo(room.time_zone)).strftime("%H:%M")


@router.post(f"{PREFIX}/rooms/{{ident}}/actions")
def room_action(ident: str, request: Request, action: str = Form(""),
                pcs: list[str] = Form(default=[]), image: str = Form(""),
                confirm: str = Form(""), csrf: str = Form(""),
                who: Visitor = Depends(visitor), db: Database = Depends(database)) -> Response:
    """Without ``confirm``: the page saying what will happen; with it: the job, started."""
    check_csrf(who.session, csrf)
    with db.session() as session:
        room = room_of(session, who.identity, ident)
        if action not in ACTIONS:
            return room_view(request, who, session, room, status=400,
                             error=f"Unknown action {action[:40]!r}.")
        if not pcs:
            return room_view(request, who, session, room, status=400,
                             error="Select at least one PC.")
        now = datetime.now(UTC)
        running = jobs.session_in_progress(session, room, now)
        body: dict[str, Any] = {"action": action, "pcs": pcs}
        if action == "restore":
            body.update(image=image or None, force=running is not None)
        if not confirm and action == jobs.LOG_OUT:
            try:  # the confirmation names the PCs the job will take: those on the class VLAN
                pcs = jobs.on_class_vlan(room, pcs)
            except Conflict as exc:
                return room_view(request, who, session, room, status=exc.code,
                                 error=exc.message)
        if not confirm:
            names = {s.uuid: s.name for s in room_statuses(session, room)}
            return render(request, "confirm.html", session=who.session,
                          identity=who.identity, room=room, action=action, pcs=pcs,
                          names=[names.get(pc, pc) for pc in pcs], image=image,
                          session_name=running.session.name if running else None,
                          session_end=_local_end(room, running.planned_end) if running else None)
        try:
            job = jobs.create_job(session, room, body, requested_by=who.identity.user, now=now)
        except (Invalid, Conflict) as exc:
            session.rollback()
            return room_view(request, who, session, room, status=exc.code, error=exc.message)
        count = len(job.pcs)
    return redirect(request, f"{PREFIX}/rooms/{ident}?notice=started&action={action}"
                             f"&count={count}")


def _change_room(request: Request, who: Visitor, db: Database, ident: str,
                 values: dict[str, Any], notice: str) -> Response:
    """A room form's values, checked and stored as the API's PATCH of the room does."""
    with db.session() as session:
        room = room_of(session, who.identity, ident)
        try:
            rooms.update_room(session, who.identity, room, values)
        except (Invalid, Conflict, Forbidden) as exc:
            session.rollback()
            return room_view(request, who, session, room_of(session, who.identity, ident),
                             status=exc.code, error=exc.message)
    return redirect(request, f"{PREFIX}/rooms/{ident}?notice={notice}")


@router.post(f"{PREFIX}/rooms/{{ident}}/layout")
def room_layout(ident: str, request: Request, rows: str = Form(""), columns: str = Form(""),
                csrf: str = Form(""), who: Visitor = Depends(visitor),
                db: Database = Depends(database)) -> Response:
    """The rows and columns the room's PCs are drawn in; both empty: no layout."""
    check_csrf(who.session, csrf)
    given = {"rows": rows.strip(), "columns": columns.strip()}
    # A number as the API takes it; anything else as typed, for the API's refusal to name.
    layout = None if not any(given.values()) else {
        key: int(text) if text.isdecimal() and len(text) < 4 else text
        for key, text in given.items()}
    return _change_room(request, who, db, ident, {"layout": layout}, "laid-out")


@router.post(f"{PREFIX}/rooms/{{ident}}/logins")
def room_logins(ident: str, request: Request, pc_logins: str = Form(""),
                login_language: str = Form(""), csrf: str = Form(""),
                who: Visitor = Depends(visitor), db: Database = Depends(database)) -> Response:
    """The room's switch of logins at its PCs and their prompt's language ("default": the
    settings decide)."""
    check_csrf(who.session, csrf)
    # A word of the form as the API takes it; anything else as typed, for its refusal.
    values = {"pc_logins": LOGIN_SWITCH.get(pc_logins, pc_logins),
              "login_language": None if login_language == "default" else login_language}
    return _change_room(request, who, db, ident, values, "logins-saved")


@router.post(f"{PREFIX}/rooms/{{ident}}/retry")
def retry_failed(ident: str, request: Request, pcs: list[str] = Form(default=[]),
                 csrf: str = Form(""), who: Visitor = Depends(visitor),
                 db: Database = Depends(database)) -> Response:
    """Retry the failed PCs among ``pcs`` (all the room's failed PCs when none is named), each
    in the job it failed in."""
    check_csrf(who.session, csrf)
    with db.session() as session:
        room = room_of(session, who.identity, ident)
        failed = [s for s in room_statuses(session, room)
                  if s.failed and (not pcs or s.uuid in pcs)]
        for status in failed:
            job = session.scalar(select(Job).where(Job.uuid == status.job))
            if job is not None:
                jobs.retry_pc(session, job, status.uuid)
    notice = f"retried&count={len(failed)}" if failed else "nothing-to-retry"
    return redirect(request, f"{PREFIX}/rooms/{ident}?notice={notice}")


@router.get(f"{PREFIX}/rooms/{{ident}}/jobs")
def jobs_page(ident: str, request: Request, who: Visitor = Depends(visitor),
              db: Database = Depends(database)) -> Response:
    with db.session() as session:
        room = room_of(session, who.identity, ident)
        names = {pc.node.uuid: pc.node.name or pc.node.uuid for pc in room.pcs}
        history = session.scalars(select(Job).where(Job.room_id == room.id)
                                  .options(selectinload(Job.pcs))
                                  .order_by(Job.id.desc()).limit(HISTORY_LENGTH))
        zone = ZoneInfo(room.time_zone)
        listed = [{
            "when": job.created_at.replace(tzinfo=UTC).astimezone(zone).strftime(
                "%Y-%m-%d %H:%M"),
            "who": job.requested_by, "kind": job.kind, "state": job.state,
            "scheduled": job.occurrence_id is not None,
            "image": (f"{job.image_version.image.name}:{job.image_version.version}"
                      if job.image_version else None),
            "pcs": [{"name": names.get(pc.node_uuid, pc.node_uuid), "outcome": pc.outcome,
                     "error": pc.error} for pc in job.pcs]} for job in history]
        return render(request, "jobs.html", session=who.session, identity=who.identity,
                      room=room, jobs=listed)
