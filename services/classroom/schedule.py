"""When a session happens: wall-clock times in the room's zone turned into UTC instants.

A session's times are wall-clock (naive) in its room's IANA zone; each occurrence is placed
with ``zoneinfo`` on its own date, so a weekly 14:00 Europe/Paris class is at 14:00 local
before and after a daylight-saving change (12:00 UTC in summer, 13:00 UTC in winter); the gap
and the repeated hour are handled as ``services.classroom.times`` says.

Weekly recurrences are RFC 5545 RRULEs read by python-dateutil; iCalendar sessions are expanded
by ``services.classroom.calendar``. Expansion is always bounded: by a window and a count.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from services.classroom.calendar import calendar_occurrences
from services.classroom.times import Interval, as_utc, to_utc
from services.common.exceptions import Invalid

RECURRENCES = ("once", "weekly", "ical")
MAX_WEEKLY_COUNT = 520  # ten years of weekly classes
MAX_RECURRENCE_YEARS = 10
# Occurrences one expansion returns at most (a window of a year of any session fits).
MAX_OCCURRENCES_PER_WINDOW = 5000


@dataclass(frozen=True)
class Schedule:
    """What the expansion needs of a session: its kind, wall-clock times, rule or calendar."""

    recurrence: str
    starts_at: datetime  # naive, the room's wall clock
    ends_at: datetime
    rrule: str | None = None
    calendar: str | None = None


def weekly_rule(starts_at: datetime, until: datetime | date | None, count: int | None,
                interval: int = 1) -> str:
    """The RRULE of a weekly session, which must end: by ``until`` (wall clock) or ``count``."""
    if (until is None) == (count is None):
        raise Invalid("A weekly session needs exactly one of until (a last date) or count "
                      "(a number of weeks): an endless recurrence is not stored.")
    if not 1 <= interval <= 52:
        raise Invalid("Invalid interval: a weekly session repeats every 1 to 52 weeks.")
    rule = f"FREQ=WEEKLY;INTERVAL={interval}"
    if count is not None:
        if not 1 <= count <= MAX_WEEKLY_COUNT:
            raise Invalid(f"Invalid count: a weekly session has 1 to {MAX_WEEKLY_COUNT} "
                          "occurrences.")
        return f"{rule};COUNT={count}"
    assert until is not None
    last = until if isinstance(until, datetime) else datetime.combine(until, time(23, 59, 59))
    if last < starts_at:
        raise Invalid("Invalid until: it is before the session's first start.")
    if last > starts_at + timedelta(days=366 * MAX_RECURRENCE_YEARS):
        raise Invalid(f"Invalid until: a recurrence spans at most {MAX_RECURRENCE_YEARS} "
                      "years.")
    return f"{rule};UNTIL={last:%Y%m%dT%H%M%S}"


def _parsed_rule(schedule: Schedule) -> rrule:
    try:
        rule = rrulestr(schedule.rrule or "", dtstart=schedule.starts_at)
    except (ValueError, TypeError) as exc:
        raise Invalid(f"Invalid recurrence rule {schedule.rrule!a}: {exc}") from None
    text = (schedule.rrule or "").upper()
    if not isinstance(rule, rrule) or ("COUNT=" not in text and "UNTIL=" not in text):
        raise Invalid("A recurrence rule must end (UNTIL or COUNT).")
    return rule


def _from_wall_clock(starts: Iterator[datetime], length: timedelta, where: ZoneInfo
                     ) -> Iterator[Interval]:
    for start in starts:
        yield Interval(to_utc(start, where), to_utc(start + length, where))


def occurrences(schedule: Schedule, where: ZoneInfo, window_start: datetime,
                window_end: datetime, limit: int = MAX_OCCURRENCES_PER_WINDOW
                ) -> list[Interval]:
    """The occurrences of ``schedule`` ending after ``window_start`` and starting before
    ``window_end`` (aware datetimes), in time order, at most ``limit`` of them."""
    window_start, window_end = as_utc(window_start), as_utc(window_end)
    length = schedule.ends_at - schedule.starts_at
    if schedule.recurrence == "once":
        found: Iterator[Interval] = iter(
            [Interval(to_utc(schedule.starts_at, where), to_utc(schedule.ends_at, where))])
    elif schedule.recurrence == "weekly":
        # Wall-clock bounds one day wider than the window: the zone's offset is under a day.
        local_from = window_start.astimezone(where).replace(tzinfo=None) - length - timedelta(1)
        local_to = window_end.astimezone(where).replace(tzinfo=None) + timedelta(1)
        starts = _parsed_rule(schedule).xafter(local_from, inc=True)
        found = _from_wall_clock(itertools.takewhile(lambda s: s <= local_to, starts), length,
                                 where)
    elif schedule.recurrence == "ical":
        found = calendar_occurrences(schedule.calendar or "", where, window_start)
    else:
        raise Invalid(f"Invalid recurrence {schedule.recurrence!a}: one of "
                      f"{', '.join(RECURRENCES)}.")
    selected = (i for i in found if i.end > window_start)
    return list(itertools.islice(itertools.takewhile(lambda i: i.start < window_end,
                                                     selected), limit))


def first_after(schedule: Schedule, where: ZoneInfo, now: datetime,
                search: timedelta = timedelta(days=366 * MAX_RECURRENCE_YEARS)
                ) -> Interval | None:
    """The first occurrence starting at or after ``now``, if any within ``search``."""
    for interval in occurrences(schedule, where, now, now + search, limit=MAX_WEEKLY_COUNT * 2):
        if interval.start >= as_utc(now):
            return interval
    return None
