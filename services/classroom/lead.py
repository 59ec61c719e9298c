"""How early a room's restore starts: its lead time, from how long its last restores took.

A session that restores first must find its PCs ready at its start, so its restore job starts
``lead`` before it. The lead of a room is measured: the longest of its last
``ENCLUME_RESTORE_LEAD_SAMPLES`` restore jobs (``restore`` and ``restore-delta``: a room's
PCs are restored full or delta one by one, and the longest covers both) that ended with some
PC restored (``done`` or ``failed-partly``; ``failed`` ones end early and say nothing of a
restore's length), from the
job's creation to its first end (``jobs.finished_at``), times ``ENCLUME_RESTORE_LEAD_FACTOR``,
kept between ``ENCLUME_RESTORE_LEAD_MIN_S`` and ``ENCLUME_RESTORE_LEAD_MAX_S``. The longest
rather than a mean: one slow restore (a busy network, a PC that needed a second try) is exactly
what a lead must cover. A room with no finished restore yet gets ``ENCLUME_RESTORE_LEAD_S``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.classroom.jobs import RESTORE_KINDS
from services.classroom.times import as_utc
from services.common.classroom_models import Job
from services.common.config import Settings

MEASURED_STATES = ("done", "failed-partly")


@dataclass(frozen=True)
class LeadPolicy:
    """The settings of the lead (ENCLUME_RESTORE_LEAD_*)."""

    fallback: timedelta
    samples: int
    factor: float
    floor: timedelta
    ceiling: timedelta

    @classmethod
    def of(cls, settings: Settings) -> LeadPolicy:
        section = settings.classroom
        return cls(timedelta(seconds=section.restore_lead_s), section.restore_lead_samples,
                   section.restore_lead_factor, timedelta(seconds=section.restore_lead_min_s),
                   timedelta(seconds=section.restore_lead_max_s))

    @property
    def longest(self) -> timedelta:
        """The longest lead any room can get: how far ahead the runner must look."""
        return max(self.fallback, self.ceiling) if self.samples else self.fallback


@dataclass(frozen=True)
class Lead:
    """A room's lead; ``samples`` restores measured (0: the setting), the longest of them."""

    duration: timedelta
    samples: int = 0
    longest_restore: timedelta | None = None

    @property
    def source(self) -> str:
        return "measured" if self.samples else "setting"

    def document(self) -> dict[str, object]:
        return {"seconds": round(self.duration.total_seconds(), 1), "source": self.source,
                "samples": self.samples,
                "longest_restore_s": (round(self.longest_restore.total_seconds(), 1)
                                      if self.longest_restore is not None else None)}


def lead_from(durations: Iterable[timedelta], policy: LeadPolicy) -> Lead:
    """The lead for restores that took ``durations`` (the setting's when there are none)."""
    measured = list(durations)
    if not measured or policy.samples == 0:
        return Lead(policy.fallback)
    longest = max(measured)
    wanted = longest * policy.factor
    return Lead(min(max(wanted, policy.floor), policy.ceiling), len(measured), longest)


def restore_durations(session: Session, room_ids: Iterable[int], samples: int
                      ) -> dict[int, list[timedelta]]:
    """The durations of the last ``samples`` measured restores of each room, newest first:
    one query for all the rooms."""
    ids = sorted(set(room_ids))
    if not ids or samples <= 0:
        return {}
    rank = func.row_number().over(partition_by=Job.room_id,
                                  order_by=(Job.finished_at.desc(), Job.id.desc()))
    ranked = (select(Job.room_id, Job.created_at, Job.finished_at, rank.label("rank"))
              .where(Job.room_id.in_(ids), Job.kind.in_(RESTORE_KINDS),
                     Job.state.in_(MEASURED_STATES), Job.finished_at.is_not(None))
              .subquery())
    rows = session.execute(select(ranked.c.room_id, ranked.c.created_at, ranked.c.finished_at)
                           .where(ranked.c.rank <= samples)
                           .order_by(ranked.c.room_id, ranked.c.rank))
    found: dict[int, list[timedelta]] = defaultdict(list)
    for room_id, created, finished in rows:
        found[room_id].append(max(timedelta(0), as_utc(finished) - as_utc(created)))
    return dict(found)


def room_leads(session: Session, room_ids: Iterable[int], policy: LeadPolicy
               ) -> dict[int, Lead]:
    """The lead of each room of ``room_ids``."""
    ids = set(room_ids)
    durations = restore_durations(session, ids, policy.samples)
    return {room_id: lead_from(durations.get(room_id, []), policy) for room_id in ids}


def room_lead(session: Session, room_id: int, policy: LeadPolicy) -> Lead:
    return room_leads(session, [room_id], policy)[room_id]
