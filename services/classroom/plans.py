"""What the timetable does next in a room or for a session, as the runner will do it: the next
occurrence not yet over, and its next action with its planned instant (a restore its room's
lead before the class, the class's start, its "after" action or its end)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.classroom.fields import RESTORING
from services.classroom.lead import Lead, LeadPolicy, room_lead
from services.classroom.sessions import next_occurrences
from services.classroom.times import as_utc
from services.common.classroom_models import ClassSession, Occurrence, Room

PENDING = ("planned", "claimed", "running")


def _next_occurrence(session: Session, room: Room, cls_session: ClassSession | None,
                     now: datetime) -> Occurrence | None:
    statement = (select(Occurrence).join(ClassSession)
                 .where(ClassSession.room_id == room.id, Occurrence.state.in_(PENDING),
                        Occurrence.planned_end > as_utc(now).replace(tzinfo=None))
                 .order_by(Occurrence.planned_start).limit(1))
    if cls_session is not None:
        statement = statement.where(Occurrence.session_id == cls_session.id)
    return session.scalar(statement)


def next_action(session: Session, room: Room, now: datetime, lead: Lead,
                cls_session: ClassSession | None = None) -> dict[str, Any] | None:
    """The next thing the timetable does in ``room`` (for ``cls_session`` only, if given):
    ``action`` (``restore-full``, ``restore-delta``, ``start``, ``power-off``, ``restore``,
    ``end``), ``at`` (its planned instant, UTC; in the past when it is due now), and the
    occurrence it belongs to. None when nothing is planned."""
    occurrence = _next_occurrence(session, room, cls_session, now)
    if occurrence is not None:
        owner, state, uuid = occurrence.session, occurrence.state, occurrence.uuid
        start, end = as_utc(occurrence.planned_start), as_utc(occurrence.planned_end)
    else:  # beyond the horizon of created occurrences: from the sessions' schedules
        found = _first_beyond_the_horizon(session, room, cls_session, now)
        if found is None:
            return None
        owner, (start, end) = found
        state, uuid = "planned", None
    if state == "planned" and owner.before in RESTORING:
        action, at = owner.before, start - lead.duration
    elif state in ("planned", "claimed") and as_utc(now) < start:
        action, at = "start", start
    else:
        action, at = (owner.after if owner.after != "nothing" else "end"), end
    return {"action": action, "at": at, "session": owner.uuid, "occurrence": uuid,
            "occurrence_start": start, "occurrence_end": end}


def _first_beyond_the_horizon(session: Session, room: Room, cls_session: ClassSession | None,
                              now: datetime
                              ) -> tuple[ClassSession, tuple[datetime, datetime]] | None:
    candidates = [cls_session] if cls_session is not None else list(session.scalars(
        select(ClassSession).where(ClassSession.room_id == room.id)))
    upcoming = [(found[0], owner) for owner in candidates
                if (found := next_occurrences(owner, now, 1))]
    if not upcoming:
        return None
    interval, owner = min(upcoming, key=lambda pair: pair[0][0])
    return owner, interval


def room_plan(session: Session, room: Room, now: datetime, policy: LeadPolicy,
              cls_session: ClassSession | None = None) -> tuple[Lead, dict[str, Any] | None]:
    """The room's restore lead and its (or the session's) next action."""
    lead = room_lead(session, room.id, policy)
    return lead, next_action(session, room, now, lead, cls_session)
