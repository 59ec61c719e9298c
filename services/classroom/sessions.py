"""Sessions: one class in one room, once, weekly, or from an iCalendar file; with the checks
that keep a timetable sane (image allowed in the room, not in the past, no overlap)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.classroom import calendar, fields, occurrences, rooms
from services.classroom.access import find_room
from services.classroom.images import find_version
from services.classroom.overlap import OVERLAP_WINDOW, first_overlap, self_overlap
from services.classroom.schedule import (
    MAX_OCCURRENCES_PER_WINDOW,
    Schedule,
    first_after,
    weekly_rule,
)
from services.classroom.schedule import occurrences as expand
from services.classroom.times import as_utc, zone
from services.common import validation
from services.common.classroom_models import ClassSession, ImageVersion, Room
from services.common.exceptions import Conflict, Invalid
from services.common.identity import Identity

SESSION_FIELDS = frozenset({"name", "room", "image", "recurrence", "start", "end", "until",
                            "count", "interval", "ical", "before", "after"})
MAX_SESSION_LENGTH = timedelta(hours=24)


@dataclass(frozen=True)
class Limits:
    """The settings that bound a session's creation and change (ENCLUME_ICAL_*, the horizon,
    the grace of an occurrence)."""

    ical_max_bytes: int
    ical_max_events: int
    horizon: timedelta
    grace: timedelta = timedelta(0)


def _schedule(values: dict[str, Any], room: Room, limits: Limits, now: datetime) -> Schedule:
    recurrence = fields.choice("recurrence", values.get("recurrence", "once"),
                               ("once", "weekly", "ical"))
    where = zone(room.time_zone)
    if recurrence == "ical":
        if any(k in values for k in ("start", "end", "until", "count", "interval")):
            raise Invalid("An iCalendar session takes its times from the calendar: no start, "
                          "end, until, count or interval.")
        text = values.get("ical")
        if not isinstance(text, str):
            raise Invalid("Mandatory field missing: ical (the iCalendar text).")
        parsed = calendar.parse(text, max_bytes=limits.ical_max_bytes,
                                max_events=limits.ical_max_events)
        calendar.check_expandable(text, where, now)
        first = next(calendar.calendar_occurrences(text, where, as_utc(now)), None)
        naive = (first.start.astimezone(where).replace(tzinfo=None) if first else
                 datetime(1970, 1, 1))
        length = (first.end - first.start) if first else timedelta(0)
        return Schedule("ical", naive, naive + length, None, parsed.to_ical().decode())
    if "ical" in values:
        raise Invalid("ical belongs to sessions with recurrence ical.")
    for required in ("start", "end"):
        if required not in values:
            raise Invalid(f"Mandatory field missing: {required}.")
    start = fields.wall_clock("start", values["start"])
    end = checked_end(start, values["end"])
    if recurrence == "once":
        if any(k in values for k in ("until", "count", "interval")):
            raise Invalid("until, count and interval belong to weekly sessions.")
        return Schedule("once", start, end)
    until = (fields.wall_clock_or_date("until", values["until"])
             if values.get("until") is not None else None)
    count = fields.positive_int("count", values["count"]) if values.get("count") else None
    interval = fields.positive_int("interval", values.get("interval", 1))
    return Schedule("weekly", start, end, weekly_rule(start, until, count, interval))


def checked_end(start: datetime, value: Any) -> datetime:
    end = fields.wall_clock("end", value)
    if not start < end <= start + MAX_SESSION_LENGTH:
        raise Invalid("Invalid end: a session ends after its start, within 24 hours.")
    return end


def refuse_the_past(schedule: Schedule, room: Room, now: datetime) -> None:
    if first_after(schedule, zone(room.time_zone), now) is None:
        raise Invalid("The session is in the past: none of its occurrences starts after now.")


def allowed_version(session: Session, room: Room, reference: Any) -> ImageVersion:
    version = find_version(session, reference)
    if version.image_id not in {a.image_id for a in room.allowed_images}:
        raise Invalid(f"Image {version.image.name} is not allowed in room {room.name}.")
    return version


def create_session(session: Session, caller: Identity, body: Any, *, now: datetime,
                   limits: Limits) -> ClassSession:
    """A new session in the room ``body`` names (404 if ``caller`` cannot see it), with its
    first occurrences; Invalid (400) or Conflict (409) and nothing stored if it does not fit.
    Call it first in its transaction: it takes the room's lock before reading anything."""
    values = fields.known_keys("session", body, SESSION_FIELDS)
    if not isinstance(values.get("room"), str):
        raise Invalid("Mandatory field missing: room (a room's name or UUID).")
    rooms.lock(session, values["room"])
    room = find_room(session, caller, values["room"])
    schedule = _schedule(values, room, limits, now)
    refuse_the_past(schedule, room, now)
    version = allowed_version(session, room, values.get("image"))
    cls_session = ClassSession(
        name=(validation.text("name", values["name"]) if values.get("name") is not None
              else None),
        room_id=room.id, image_version_id=version.id, recurrence=schedule.recurrence,
        starts_at=schedule.starts_at, ends_at=schedule.ends_at, rrule=schedule.rrule,
        calendar=schedule.calendar,
        before=fields.choice("before", values.get("before", "restore-full"), fields.BEFORE),
        after=fields.choice("after", values.get("after", "nothing"), fields.AFTER),
        created_by=caller.user)
    refuse_overlap(session, room, schedule, now)
    session.add(cls_session)
    session.flush()
    session.refresh(cls_session, ["room"])
    occurrences.extend(session, cls_session, now, limits.horizon)
    return cls_session


def refuse_overlap(session: Session, room: Room, schedule: Schedule, now: datetime,
                   changed: ClassSession | None = None) -> None:
    """Invalid or Conflict if ``schedule`` is no timetable or clashes with another session
    of the room (``changed``: the session being changed, not compared with itself)."""
    where = zone(room.time_zone)
    window_end = as_utc(now) + OVERLAP_WINDOW
    candidate = expand(schedule, where, now, window_end, limit=MAX_OCCURRENCES_PER_WINDOW + 1)
    if len(candidate) > MAX_OCCURRENCES_PER_WINDOW:
        raise Invalid(f"The session has more than {MAX_OCCURRENCES_PER_WINDOW} occurrences in "
                      "the coming year: a timetable holds classes, not a clock's ticks.")
    clash_within = self_overlap(candidate)
    if clash_within is not None:
        raise Invalid("The session's own occurrences overlap, first on "
                      f"{clash_within.start.astimezone(where):%Y-%m-%d %H:%M} "
                      f"({room.time_zone}).")
    others = select(ClassSession).where(ClassSession.room_id == room.id)
    if changed is not None:
        others = others.where(ClassSession.id != changed.id)
    for other in session.scalars(others):
        clash = first_overlap(candidate, expand(occurrences.schedule_of(other), where, now,
                                                window_end))
        if clash is not None:
            at = clash[0].start.astimezone(where)
            raise Conflict(f"The session overlaps session {other.name or other.uuid} in room "
                           f"{room.name} on {at:%Y-%m-%d %H:%M} ({room.time_zone}).")


def next_occurrences(cls_session: ClassSession, now: datetime, count: int = 3
                     ) -> list[tuple[datetime, datetime]]:
    where = zone(cls_session.room.time_zone)
    found = expand(occurrences.schedule_of(cls_session), where, now,
                   as_utc(now) + OVERLAP_WINDOW, limit=count + 1)
    return [(i.start, i.end) for i in found if i.start >= as_utc(now)][:count]
