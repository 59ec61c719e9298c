"""Occurrences: a session's planned runs, created ahead up to a horizon, never unbounded.

``extend`` is idempotent (one row per session and planned start, inserted with ON CONFLICT DO
NOTHING, on MariaDB ON DUPLICATE KEY UPDATE of nothing) and safe to run from several
processes; the timetable runner calls ``extend_all`` periodically and claims due rows with one
conditional UPDATE (state planned → claimed).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.classroom.schedule import Schedule, occurrences
from services.classroom.times import as_utc, zone
from services.common.classroom_models import ClassSession, Occurrence
from services.common.models import new_uuid


def schedule_of(cls_session: ClassSession) -> Schedule:
    return Schedule(cls_session.recurrence, cls_session.starts_at, cls_session.ends_at,
                    cls_session.rrule, cls_session.calendar)


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    name = session.get_bind().dialect.name
    if name == "mysql":  # MariaDB has no ON CONFLICT: a duplicate key "updates" to itself
        from sqlalchemy.dialects import mysql  # only there: its import costs 1 MiB of RSS

        upsert = mysql.insert(Occurrence).values(rows)
        session.execute(upsert.on_duplicate_key_update(session_id=upsert.inserted.session_id))
        return
    dialect = postgresql if name == "postgresql" else sqlite
    statement = dialect.insert(Occurrence).values(rows).on_conflict_do_nothing(
        index_elements=["session_id", "planned_start"])
    session.execute(statement)


def extend(session: Session, cls_session: ClassSession, now: datetime,
           horizon: timedelta) -> None:
    """Create the session's occurrences starting in [now, now + horizon) not yet created."""
    until = as_utc(now) + horizon
    start = as_utc(now) if cls_session.expanded_until is None else max(
        as_utc(now), as_utc(cls_session.expanded_until))
    if start >= until:
        return
    where = zone(cls_session.room.time_zone)
    planned = [i for i in occurrences(schedule_of(cls_session), where, start, until)
               if i.start >= start]
    _insert_ignoring_duplicates(session, [
        {"uuid": new_uuid(), "session_id": cls_session.id, "planned_start": i.start,
         "planned_end": i.end, "state": "planned"} for i in planned])
    cls_session.expanded_until = until
    session.flush()


def extend_all(session: Session, now: datetime, horizon: timedelta) -> int:
    """Extend every session whose occurrences stop before the horizon; how many were."""
    until = as_utc(now) + horizon
    stale = list(session.scalars(select(ClassSession).where(
        (ClassSession.expanded_until.is_(None)) | (ClassSession.expanded_until < until))))
    for cls_session in stale:
        extend(session, cls_session, now, horizon)
    return len(stale)
