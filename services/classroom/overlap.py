"""Overlap of sessions in one room: two classes cannot hold the same PCs at the same time.

Sessions are compared by their occurrences over a bounded window (recurrences may be long or,
for iCalendar feeds, endless): ``OVERLAP_WINDOW`` from now.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from services.classroom.times import Interval

OVERLAP_WINDOW = timedelta(days=366)


def first_overlap(candidate: Iterable[Interval], existing: Iterable[Interval]
                  ) -> tuple[Interval, Interval] | None:
    """The first (candidate, existing) pair that overlaps, by a sweep over both sorted lists."""
    new, old = sorted(candidate, key=lambda i: i.start), sorted(existing, key=lambda i: i.start)
    i = j = 0
    while i < len(new) and j < len(old):
        if new[i].overlaps(old[j]):
            return new[i], old[j]
        if new[i].end <= old[j].end:
            i += 1
        else:
            j += 1
    return None


def self_overlap(intervals: Iterable[Interval]) -> Interval | None:
    """An occurrence that starts before an earlier one ends (an iCalendar file's events can)."""
    latest_end = None
    for interval in sorted(intervals, key=lambda i: i.start):
        if latest_end is not None and interval.start < latest_end:
            return interval
        latest_end = interval.end if latest_end is None else max(latest_end, interval.end)
    return None
