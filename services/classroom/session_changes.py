"""Changing a session (``PATCH``): its name, image, end, before and after actions, a weekly
series' last date or count. The checks of a new session are applied again (image allowed in
the room, not in the past, no overlap); occurrences not yet fired are planned again from the
new times; an occurrence the timetable runner has claimed or is running is never changed under
it (409).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.classroom import fields, occurrences, rooms
from services.classroom.access import find_in_room
from services.classroom.schedule import Schedule, weekly_rule
from services.classroom.schedule import occurrences as expand
from services.classroom.sessions import (
    Limits,
    allowed_version,
    checked_end,
    refuse_overlap,
    refuse_the_past,
)
from services.classroom.times import Interval, as_utc, zone
from services.common import validation
from services.common.classroom_models import ClassSession, Occurrence, Room
from services.common.exceptions import Conflict, Invalid
from services.common.identity import Identity

CHANGEABLE = frozenset({"name", "image", "end", "until", "count", "before", "after"})
TIMES = frozenset({"end", "until", "count"})
# What a claimed or running occurrence already acts on: its job, its end and "after" action.
IN_USE = ("image", "before", "after", "end")
ACTIVE = ("claimed", "running")


def _rule_parts(rule: str) -> dict[str, str]:
    """The parts of a weekly rule as ``schedule.weekly_rule`` writes it."""
    return dict(part.split("=", 1) for part in rule.split(";") if "=" in part)


def changed_schedule(cls_session: ClassSession, values: dict[str, Any]) -> Schedule:
    """The session's schedule with the new end, until or count of ``values``."""
    current = occurrences.schedule_of(cls_session)
    if not TIMES & values.keys():
        return current
    if current.recurrence == "ical":
        raise Invalid("An iCalendar session takes its times from its calendar: import the "
                      "calendar again to change them.")
    if current.recurrence == "once" and values.keys() & {"until", "count"}:
        raise Invalid("until and count belong to weekly sessions.")
    start = current.starts_at
    end = _end(start, values["end"]) if "end" in values else current.ends_at
    if current.recurrence == "once":
        return Schedule("once", start, end)
    if "until" in values and "count" in values:
        raise Invalid("Give until or count, not both.")
    parts = _rule_parts(current.rrule or "")
    interval = int(parts.get("INTERVAL", "1"))
    until: Any = None
    count: int | None = None
    if "until" in values:
        until = fields.wall_clock_or_date("until", values["until"])
    elif "count" in values:
        count = fields.positive_int("count", values["count"])
    elif "COUNT" in parts:
        count = int(parts["COUNT"])
    else:
        until = datetime.strptime(parts["UNTIL"], "%Y%m%dT%H%M%S")
    return Schedule("weekly", start, end, weekly_rule(start, until, count, interval))


def _refuse_change_under_the_runner(session: Session, cls_session: ClassSession,
                                    values: dict[str, Any], schedule: Schedule) -> None:
    room = cls_session.room
    where = zone(room.time_zone)
    # FOR UPDATE (PostgreSQL): the session's occurrences keep their state until this change
    # commits: a runner claiming one meanwhile waits, then sees the change.
    rows = session.scalars(select(Occurrence).where(
        Occurrence.session_id == cls_session.id,
        Occurrence.state.in_(("planned", *ACTIVE))).with_for_update())
    for occurrence in (row for row in rows if row.state in ACTIVE):
        start, end = as_utc(occurrence.planned_start), as_utc(occurrence.planned_end)
        touched = [name for name in IN_USE
                   if name in values and values[name] not in _current(cls_session, name)]
        if not touched and Interval(start, end) in expand(schedule, where, start, end):
            continue
        what = ", ".join(touched) if touched else "times (it would no longer happen)"
        raise Conflict(
            f"Session {cls_session.name or cls_session.uuid} has an occurrence in progress "
            f"({occurrence.state}, by conductor {occurrence.claimed_by}) from "
            f"{start.astimezone(where):%Y-%m-%d %H:%M} to {end.astimezone(where):%H:%M} "
            f"({room.time_zone}): its {what} cannot change under the timetable runner. "
            f"Change the session after {end.astimezone(where):%Y-%m-%d %H:%M}.")


def _current(cls_session: ClassSession, name: str) -> set[Any]:
    """The values of field ``name`` that leave the session as it is."""
    if name == "image":
        version = cls_session.image_version
        return {f"{version.image.name}:{version.version}", version.uuid}
    if name == "end":
        return {cls_session.ends_at.isoformat(timespec="minutes")}
    return {getattr(cls_session, name)}


def _end(start: datetime, value: Any) -> datetime:
    """A new end: a wall-clock time, or a time of day alone (``17:30``: the first
    occurrence's day, or the next day when it is not after the start)."""
    try:
        of_day = time.fromisoformat(value) if isinstance(value, str) and len(value) <= 8 \
            else None
    except ValueError:
        of_day = None
    if of_day is None:
        return checked_end(start, value)
    end = datetime.combine(start.date(), of_day)
    end = end if end > start else end + timedelta(days=1)
    return checked_end(start, end.isoformat())


def _replan(session: Session, cls_session: ClassSession, now: datetime,
            limits: Limits) -> None:
    """Occurrences not yet fired go; the new ones are created (those that already ran,
    were missed or are under way stay as they are)."""
    since = as_utc(now) - limits.grace
    session.execute(delete(Occurrence).where(
        Occurrence.session_id == cls_session.id, Occurrence.state == "planned",
        Occurrence.planned_start >= since.replace(tzinfo=None)))
    cls_session.expanded_until = None
    session.flush()
    occurrences.extend(session, cls_session, since, limits.horizon)


def update_session(session: Session, caller: Identity, ident: str, body: Any, *,
                   now: datetime, limits: Limits) -> ClassSession:
    """Change the session ``ident`` of a room ``caller`` may see (else 404); Invalid (400) or
    Conflict (409) and nothing changed if the new session does not fit. Call it first in its
    transaction: it takes the room's lock before reading anything."""
    rooms.lock(session, Room.id == select(ClassSession.room_id).where(
        ClassSession.uuid == ident.lower()).scalar_subquery())
    cls_session: ClassSession = find_in_room(session, caller, ClassSession, ident, "Session")
    values = fields.known_keys("session change", body, CHANGEABLE)
    if not values:
        raise Invalid(f"Nothing to change: give one of {', '.join(sorted(CHANGEABLE))}.")
    room = cls_session.room
    schedule = changed_schedule(cls_session, values)
    if "end" in values:
        values["end"] = schedule.ends_at.isoformat(timespec="minutes")
    refuse_the_past(schedule, room, now)
    version = (allowed_version(session, room, values["image"]) if "image" in values
               else cls_session.image_version)
    before = fields.choice("before", values.get("before", cls_session.before), fields.BEFORE)
    after = fields.choice("after", values.get("after", cls_session.after), fields.AFTER)
    refuse_overlap(session, room, schedule, now, changed=cls_session)
    _refuse_change_under_the_runner(session, cls_session, values, schedule)
    if "name" in values:
        cls_session.name = (None if values["name"] is None
                            else validation.text("name", values["name"]))
    cls_session.image_version_id, cls_session.before, cls_session.after = (
        version.id, before, after)
    retimed = schedule != occurrences.schedule_of(cls_session)
    cls_session.ends_at, cls_session.rrule = schedule.ends_at, schedule.rrule
    session.flush()
    session.refresh(cls_session, ["image_version"])
    if retimed:
        _replan(session, cls_session, now, limits)
    return cls_session
