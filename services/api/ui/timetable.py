"""A room's timetable: the week's classes (its occurrences, in the room's wall-clock time),
what happens next and when, the room's sessions with their cancel buttons, and the form that
plans a class once or weekly or imports an iCalendar file. Sessions are created and deleted
through the classroom layer, with the same checks as the JSON API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.api.enclume.common import limits
from services.api.routing import api_router
from services.api.ui.room_pages import image_choices, room_of
from services.api.ui.web import (
    PREFIX,
    PageNotFound,
    Visitor,
    check_csrf,
    database,
    redirect,
    render,
    visitor,
)
from services.classroom import sessions
from services.classroom.access import find_in_room
from services.classroom.ical_feed import fetch_feed
from services.common.classroom_models import ClassSession, Occurrence, Room
from services.common.db import Database
from services.common.exceptions import Conflict, Invalid, NotFound

router = api_router(include_in_schema=False)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Slot:
    start: datetime  # in the room's time zone
    end: datetime
    name: str
    image: str
    state: str


def _monday(text: str | None, today: date) -> date:
    try:
        chosen = date.fromisoformat(text) if text else today
    except ValueError:
        chosen = today
    return chosen - timedelta(days=chosen.weekday())


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)  # occurrences hold naive UTC instants


def week_slots(session: Session, room: Room, monday: date) -> list[list[Slot]]:
    """The room's occurrences of the week starting ``monday``, one list per day."""
    where = ZoneInfo(room.time_zone)
    start = datetime.combine(monday, datetime.min.time(), where)
    rows = session.scalars(select(Occurrence).join(ClassSession).where(
        ClassSession.room_id == room.id,
        Occurrence.planned_start >= _naive_utc(start),
        Occurrence.planned_start < _naive_utc(start + WEEK)).order_by(Occurrence.planned_start))
    days: list[list[Slot]] = [[] for _ in DAYS]
    for occurrence in rows:
        cls = occurrence.session
        local = occurrence.planned_start.replace(tzinfo=UTC).astimezone(where)
        days[local.weekday()].append(Slot(
            local, occurrence.planned_end.replace(tzinfo=UTC).astimezone(where),
            cls.name or "—", f"{cls.image_version.image.name}:{cls.image_version.version}",
            occurrence.state))
    return days


def next_action(session: Session, room: Room, now: datetime, lead: timedelta
                ) -> dict[str, Any] | None:
    """The next class that has not started and what the timetable runner does first: a
    restore ``lead`` before its start when its session restores first, else the class."""
    upcoming = session.scalar(select(Occurrence).join(ClassSession).where(
        ClassSession.room_id == room.id, Occurrence.state == "planned",
        Occurrence.planned_start > _naive_utc(now)).order_by(Occurrence.planned_start)
        .limit(1))
    if upcoming is None:
        return None
    where = ZoneInfo(room.time_zone)
    starts = upcoming.planned_start.replace(tzinfo=UTC)
    restores = upcoming.session.before != "none"
    due = max(starts - lead, now) if restores else starts
    return {"name": upcoming.session.name or "—", "restores": restores,
            "at": due.astimezone(where).strftime("%a %Y-%m-%d %H:%M"),
            "class_at": starts.astimezone(where).strftime("%a %Y-%m-%d %H:%M")}


def timetable_view(request: Request, who: Visitor, session: Session, room: Room, *,
                   status: int = 200, error: str | None = None,
                   form: dict[str, str] | None = None) -> Response:
    settings = request.app.state.settings
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(room.time_zone)).date()
    monday = _monday(request.query_params.get("week"), today)
    listed = session.scalars(select(ClassSession).where(ClassSession.room_id == room.id)
                             .order_by(ClassSession.starts_at))
    planned = [{"uuid": s.uuid, "name": s.name or "—", "recurrence": s.recurrence,
                "image": f"{s.image_version.image.name}:{s.image_version.version}",
                "start": s.starts_at.strftime("%a %Y-%m-%d %H:%M"),
                "end": s.ends_at.strftime("%H:%M"), "created_by": s.created_by,
                "next": [start.astimezone(ZoneInfo(room.time_zone)).strftime(
                    "%a %Y-%m-%d %H:%M") for start, _end in
                    sessions.next_occurrences(s, now, 1)]} for s in listed]
    return render(request, "timetable.html", status=status, session=who.session,
                  identity=who.identity, room=room, days=DAYS,
                  slots=week_slots(session, room, monday), monday=monday,
                  dates=[monday + timedelta(days=i) for i in range(7)], today=today,
                  previous=monday - WEEK, following=monday + WEEK,
                  next_action=next_action(session, room, now,
                                          timedelta(seconds=settings.classroom.restore_lead_s)),
                  sessions=planned, images=image_choices(room), error=error,
                  form=form or {"date": today.isoformat(), "start": "14:00", "end": "16:00"},
                  created=request.query_params.get("created") == "1",
                  cancelled=request.query_params.get("cancelled") == "1")


@router.get(f"{PREFIX}/rooms/{{ident}}/timetable")
def timetable_page(ident: str, request: Request, who: Visitor = Depends(visitor),
                   db: Database = Depends(database)) -> Response:
    with db.session() as session:
        return timetable_view(request, who, session, room_of(session, who.identity, ident))


@router.post(f"{PREFIX}/rooms/{{ident}}/sessions")
def create_session(ident: str, request: Request, csrf: str = Form(""), name: str = Form(""),
                   image: str = Form(""), day: str = Form(""), start: str = Form(""),
                   end: str = Form(""), repeat: str = Form(""), until: str = Form(""),
                   before: str = Form(""), after: str = Form(""),
                   ical: UploadFile | None = File(None), ical_url: str = Form(""),
                   who: Visitor = Depends(visitor),
                   db: Database = Depends(database)) -> Response:
    """A class once or weekly from the form's fields, or the events of an iCalendar file or
    of the feed at ``ical_url`` (fetched here, once)."""
    check_csrf(who.session, csrf)
    form = {"name": name, "image": image, "date": day, "start": start, "end": end,
            "repeat": repeat, "until": until, "before": before, "after": after,
            "ical_url": ical_url.strip()}
    calendar = ical.file.read().decode("utf-8", "replace") if ical and ical.filename else None
    if form["ical_url"]:
        with db.session() as session:
            room_of(session, who.identity, ident)  # 404 before anything is fetched
        try:
            if calendar is not None:
                raise Invalid("Give an iCalendar file or the address of a feed, not both.")
            settings = request.app.state.settings.classroom
            calendar = fetch_feed(form["ical_url"], max_bytes=settings.ical_max_bytes,
                                  timeout_s=settings.ical_fetch_timeout_s)
        except Invalid as exc:
            return _refused(request, who, db, ident, form, exc)
    return _create(request, who, db, ident, form, calendar)


def _refused(request: Request, who: Visitor, db: Database, ident: str, form: dict[str, str],
             exc: Invalid | Conflict) -> Response:
    with db.session() as session:
        return timetable_view(request, who, session, room_of(session, who.identity, ident),
                              status=exc.code, error=exc.message, form=form)


def _create(request: Request, who: Visitor, db: Database, ident: str, form: dict[str, str],
            calendar: str | None) -> Response:
    with db.session() as session:
        room = room_of(session, who.identity, ident)
        body: dict[str, Any] = {"room": room.name, "image": form["image"] or None,
                                "before": form["before"] or "restore-full",
                                "after": form["after"] or "nothing"}
        if form["name"]:
            body["name"] = form["name"]
        if calendar is not None:
            body.update(recurrence="ical", ical=calendar)
        else:
            body.update(start=f"{form['date']}T{form['start']}",
                        end=f"{form['date']}T{form['end']}",
                        recurrence="weekly" if form["repeat"] == "weekly" else "once")
            if form["repeat"] == "weekly":
                body["until"] = form["until"]
        try:
            sessions.create_session(session, who.identity, body, now=datetime.now(UTC),
                                    limits=limits(request))
        except (Invalid, Conflict) as exc:
            session.rollback()
            error = f"The calendar at {form['ical_url']}: {exc.message}" if form["ical_url"] \
                else exc.message
            return timetable_view(request, who, session, room_of(session, who.identity, ident),
                                  status=exc.code, error=error, form=form)
        week = form["date"] if calendar is None else ""
    return redirect(request, f"{PREFIX}/rooms/{ident}/timetable?created=1&week={week}")


@router.post(f"{PREFIX}/rooms/{{ident}}/sessions/{{uuid}}/cancel")
def cancel_session(ident: str, uuid: str, request: Request, csrf: str = Form(""),
                   who: Visitor = Depends(visitor),
                   db: Database = Depends(database)) -> Response:
    check_csrf(who.session, csrf)
    with db.session() as session:
        room = room_of(session, who.identity, ident)
        try:
            found = find_in_room(session, who.identity, ClassSession, uuid, "Session")
        except NotFound:
            raise PageNotFound() from None
        if found.room_id != room.id:
            raise PageNotFound()
        session.delete(found)
    return redirect(request, f"{PREFIX}/rooms/{ident}/timetable?cancelled=1")
