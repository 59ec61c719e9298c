"""The timetable runner: runs the sessions of the rooms the hash ring gives this conductor.

Each pass, with ``now`` from an injectable clock:

- the sessions of its rooms get their occurrences up to the horizon (occurrences.extend);
- a ``planned`` occurrence is due its room's lead time before its start when its session
  restores first (services/classroom/lead.py: measured from the room's last restores, else
  ``ENCLUME_RESTORE_LEAD_S``), at its start otherwise. Due, it is claimed with ONE conditional
  UPDATE (``state='planned'`` → ``'claimed'``, ``claimed_by`` = this conductor) and, in the same
  transaction, its restore job is created: a claim and its job are committed together or not at
  all, so an occurrence runs once across the cluster. A room still in another session waits;
- an occurrence not claimed within ``ENCLUME_OCCURRENCE_GRACE_S`` of its due time is recorded
  ``missed``, with the reason (no conductor ran the room's timetable then, or the room was still
  in another class), and never run late; a job that could not be created, or an "after" action
  skipped for being late, leaves its reason on the occurrence too;
- at its start a claimed occurrence is ``running``; at its end it is ``done`` and the session's
  "after" action (power-off or restore) is created as a job, by the same kind of conditional
  UPDATE (``running`` → ``done``), at most once (after more than the grace: not at all); after
  ``nothing``, a ``log-out`` job of the room's PCs on the class VLAN (the same once, the same
  grace), which moves them back to the idle VLAN and ends their logins;
- an occurrence claimed by a conductor that is no longer alive is handed over: ``claimed_by``
  becomes the room's new owner. Its job is not created again; the job advancer of the new owner
  goes on with the PCs that have not finished (the job rows say which did).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.classroom import jobs, occurrences
from services.classroom.fields import RESTORING
from services.classroom.lead import Lead, LeadPolicy, room_leads
from services.classroom.networks import class_vlan_pcs
from services.classroom.times import as_utc
from services.common.classroom_models import ClassSession, Occurrence, Room
from services.common.config import Settings
from services.common.db import Database
from services.common.exceptions import EnclumeError
from services.common.membership import Membership

LOG = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass
class TimetableReport:
    claimed: int = 0
    missed: int = 0
    started: int = 0
    ended: int = 0
    handed_over: int = 0
    checked: int = 0  # occurrences of this conductor's rooms looked at in the pass


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TimetableRunner:
    def __init__(self, db: Database, settings: Settings, membership: Membership, host: str,
                 clock: Clock = _utc_now) -> None:
        self.db = db
        self.settings = settings
        self.membership = membership
        self.host = host
        self.clock = clock
        self.lead_policy = LeadPolicy.of(settings)
        self.last_pass: datetime | None = None
        self.grace = timedelta(seconds=settings.classroom.occurrence_grace_s)
        self.horizon = timedelta(days=settings.classroom.occurrence_horizon_days)

    def owns(self, room_uuid: str) -> bool:
        return self.membership.ring(self.settings.conductor.group).owner(room_uuid) == self.host

    def run(self, now: datetime | None = None) -> TimetableReport:
        """One pass at ``now`` (the clock's time by default)."""
        now = as_utc(now or self.clock()).replace(tzinfo=None)  # rows hold naive UTC
        report = TimetableReport()
        self._extend(now)
        with self.db.session() as session:
            rows = session.execute(
                select(Occurrence.id, Occurrence.state, Occurrence.claimed_by,
                       Occurrence.planned_start, Occurrence.planned_end, ClassSession.before,
                       Room.uuid, Room.id.label("room_id"))
                .join(ClassSession, Occurrence.session_id == ClassSession.id)
                .join(Room, ClassSession.room_id == Room.id)
                .where(Occurrence.state.in_(("planned", "claimed", "running")),
                       Occurrence.planned_start <= now + self.lead_policy.longest)
                .order_by(Occurrence.planned_start)).all()
            mine = [row for row in rows if self.owns(row.uuid)]
            leads = room_leads(session, {row.room_id for row in mine if row.state == "planned"
                                         and row.before in RESTORING}, self.lead_policy)
        alive = set(self.membership.members())
        report.checked = len(mine)
        for row in mine:
            try:
                self._advance(row, now, alive, report, leads.get(row.room_id))
            except Exception:
                LOG.exception("timetable: occurrence %s could not be advanced", row.id)
        self.last_pass = now
        return report

    def _extend(self, now: datetime) -> None:
        """Sessions whose occurrences end less than half the horizon ahead get more: a session
        is extended about twice per horizon, not on every pass."""
        until = now + self.horizon / 2
        with self.db.session() as session:
            stale = session.scalars(select(ClassSession).join(Room).where(
                (ClassSession.expanded_until.is_(None)) | (ClassSession.expanded_until < until)
            )).all()
            for cls_session in stale:
                if self.owns(cls_session.room.uuid):
                    occurrences.extend(session, cls_session, now.replace(tzinfo=UTC),
                                       self.horizon)

    def _advance(self, row: Any, now: datetime, alive: set[str],
                 report: TimetableReport, lead: Lead | None) -> None:
        due = row.planned_start - (lead.duration if lead is not None else timedelta())
        if row.state == "planned":
            if now > due + self.grace:
                reason = self._missed_reason(row.id, due, now)
                report.missed += self._move(row.id, "planned", "missed", reason=reason)
                LOG.warning("timetable: occurrence %s missed: %s", row.id, reason)
            elif now >= due:
                report.claimed += self._claim(row.id, now)
            return
        if row.state == "claimed" and row.claimed_by not in alive and \
                row.claimed_by != self.host:
            report.handed_over += self._hand_over(row.id, row.claimed_by, now)
        if row.state == "claimed" and now >= row.planned_start:
            report.started += self._move(row.id, "claimed", "running")
        if row.state in ("claimed", "running") and now >= row.planned_end:
            report.ended += self._end(row.id, row.state, now)

    def _move(self, occurrence_id: int, old: str, new: str,
              session: Session | None = None, **values: Any) -> int:
        """One conditional UPDATE: 1 if this pass moved the occurrence, 0 if another did."""
        statement = (update(Occurrence)
                     .where(Occurrence.id == occurrence_id, Occurrence.state == old)
                     .values(state=new, **values)
                     .execution_options(synchronize_session=False))
        if session is not None:
            return int(session.execute(statement).rowcount)
        with self.db.session() as own:
            return int(own.execute(statement).rowcount)

    def _claim(self, occurrence_id: int, now: datetime) -> int:
        with self.db.session() as session:
            occurrence = session.get(Occurrence, occurrence_id)
            assert occurrence is not None
            cls_session = occurrence.session
            if cls_session.before in RESTORING and jobs.session_in_progress(
                    session, cls_session.room, now) not in (None, occurrence):
                return 0  # the room is still in another class: not now
            if not self._move(occurrence_id, "planned", "claimed", session,
                              claimed_by=self.host, claimed_at=now):
                return 0
            # A session change (PATCH) that committed while this claim waited on its row lock
            # is read now, so the job is the changed session's.
            session.refresh(cls_session)
            if cls_session.before in RESTORING:
                # restore-full: the room's restore (delta where the PC had the image)
                kind = jobs.FORCED_DELTA if cls_session.before == "restore-delta" \
                    else "restore"
                self._job(session, occurrence, kind, now)
        return 1

    def _end(self, occurrence_id: int, state: str, now: datetime) -> int:
        with self.db.session() as session:
            if not self._move(occurrence_id, state, "done", session):
                return 0
            occurrence = session.get(Occurrence, occurrence_id)
            assert occurrence is not None
            after = occurrence.session.after
            if after == "nothing":
                # Neither restored nor powered off: the PCs a deploy left on the class VLAN
                # go back to the idle VLAN (their logins end), if there are any.
                if not class_vlan_pcs(occurrence.session.room):
                    return 1
                after = jobs.LOG_OUT
            if now > occurrence.planned_end + self.grace:
                occurrence.reason = (
                    f"The {after} after the class was skipped: the class ended at "
                    f"{_utc(occurrence.planned_end)} and no conductor ended it before "
                    f"{_utc(occurrence.planned_end + self.grace)} (the grace of "
                    f"{_seconds(self.grace)} s); it is never run late.")
                LOG.warning("timetable: occurrence %s: %s", occurrence.uuid, occurrence.reason)
                return 1
            self._job(session, occurrence, after, now)
        return 1

    def _hand_over(self, occurrence_id: int, previous: str | None, now: datetime) -> int:
        with self.db.session() as session:
            moved = session.execute(
                update(Occurrence)
                .where(Occurrence.id == occurrence_id, Occurrence.state == "claimed",
                       Occurrence.claimed_by == previous)
                .values(claimed_by=self.host, claimed_at=now)
                .execution_options(synchronize_session=False)).rowcount
        if moved:
            LOG.info("timetable: occurrence %s handed over from %s", occurrence_id, previous)
        return int(moved)

    def _job(self, session: Session, occurrence: Occurrence, kind: str, now: datetime) -> None:
        """The occurrence's job of all the room's PCs (a log-out: those on the class VLAN)."""
        cls_session = occurrence.session
        body: dict[str, Any] = {"action": kind}
        if kind in jobs.RESTORE_KINDS:
            body["image"] = cls_session.image_version.uuid
        try:
            jobs.create_job(session, cls_session.room, body, now=now, occurrence=occurrence,
                            requested_by=f"timetable ({cls_session.created_by or 'staff'})")
        except EnclumeError as exc:
            # A room without PCs, an image no longer allowed: recorded, not retried.
            occurrence.reason = f"No {kind} job was started: {exc.message}"
            LOG.warning("timetable: occurrence %s: %s", occurrence.uuid, occurrence.reason)

    def _missed_reason(self, occurrence_id: int, due: datetime, now: datetime) -> str:
        """Why an occurrence was not claimed in time: the room was still in another class
        at the end of the grace, or no conductor ran the room's timetable meanwhile."""
        last_chance = due + self.grace
        grace = f"missed by more than the grace of {_seconds(self.grace)} s"
        with self.db.session() as session:
            occurrence = session.get(Occurrence, occurrence_id)
            assert occurrence is not None
            room = occurrence.session.room
            other = jobs.session_in_progress(session, room, last_chance)
            if other is not None and other.id != occurrence.id:
                return (f"Room {room.name} was still in session "
                        f"{other.session.name or other.session.uuid} until "
                        f"{_utc(other.planned_end)}, from this occurrence's due time "
                        f"{_utc(due)} to {_utc(last_chance)}: {grace}; a restore never starts "
                        "during a class unless forced.")
        previous = (f"this conductor's previous pass: {_utc(self.last_pass)}"
                    if self.last_pass is not None else "this conductor has just started")
        return (f"No conductor was running room {room.name}'s timetable between its due time "
                f"{_utc(due)} and {_utc(last_chance)} ({previous}; recorded at {_utc(now)}): "
                f"{grace}; it is never run late.")


def _utc(instant: datetime) -> str:
    return f"{as_utc(instant):%Y-%m-%d %H:%M:%S} UTC"


def _seconds(span: timedelta) -> str:
    return f"{span.total_seconds():g}"
