"""Instants and wall-clock times: IANA zones by name, wall clock to UTC, occurrence intervals.

A naive wall-clock time is placed in its zone with ``fold=0``: a time in the spring gap (02:30
on the day clocks go forward) falls after the gap (03:30); an ambiguous one (the repeated hour
in autumn) is its first, summer-time, instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common.exceptions import Invalid


@dataclass(frozen=True)
class Interval:
    """One occurrence: [start, end) as UTC instants."""

    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


def zone(name: object) -> ZoneInfo:
    """An IANA time zone by name (Europe/Paris); Invalid if there is none by that name."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith("/"):
        raise Invalid(f"Invalid time_zone {name!a}: expected an IANA zone like Europe/Paris.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"Unknown time_zone {name!a}: expected an IANA zone like "
                      "Europe/Paris.") from None


def to_utc(wall_clock: datetime, where: ZoneInfo) -> datetime:
    """The instant of a naive wall-clock time in ``where`` (see the module's DST rules)."""
    return wall_clock.replace(tzinfo=where, fold=0).astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """An instant as an aware UTC datetime (SQLite hands back naive UTC values)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
