"""Sessions imported from an iCalendar file or feed (RFC 5545), as timetable systems publish.

The text is parsed by ``icalendar`` and its events expanded by ``recurring-ical-events`` (RRULE,
RDATE, EXDATE and moved instances included); nothing here parses iCalendar by hand. Limits keep
an import cheap: the text's size and its number of events are bounded, and a rule without an
end is never expanded whole: ``calendar_occurrences`` walks forward from an instant and the
caller stops at its window (occurrences are created lazily, up to a horizon).

Event times with a TZID or in UTC keep their instant; floating times (no zone) are wall-clock
in the room's zone. All-day events are refused: a class has a start and an end time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from services.classroom.times import Interval, to_utc
from services.common.exceptions import Invalid

if TYPE_CHECKING:
    import icalendar

# Occurrences tried when a calendar is imported, to find broken rules before they are stored.
TRIAL_OCCURRENCES = 50
# Rules repeating more often than daily are no timetable (and would be costly to expand).
TOO_FREQUENT = frozenset({"SECONDLY", "MINUTELY", "HOURLY"})


def _instant(value: date | datetime, where: ZoneInfo, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise Invalid(f"Invalid iCalendar: {what} is a date without a time (an all-day "
                      "event); a session needs a start and an end time.")
    if value.tzinfo is None:
        return to_utc(value, where)
    return value.astimezone(UTC)


def _value(event: icalendar.Event, name: str) -> object:
    """A property's value, None if missing or unreadable (icalendar keeps broken ones)."""
    try:
        return getattr(event.get(name), "dt", None)
    except (ValueError, AttributeError):  # BrokenCalendarProperty is a ValueError
        return None


def _frequencies(event: icalendar.Event) -> set[str]:
    rules = event.get("RRULE")
    try:
        return {str(f).upper() for rule in (rules if isinstance(rules, list) else [rules])
                if rule for f in rule.get("FREQ", [])}
    except ValueError as exc:  # BrokenCalendarProperty: a rule icalendar could not read
        raise Invalid(f"Invalid iCalendar recurrence: {exc}") from None


def parse(text: str, *, max_bytes: int, max_events: int) -> icalendar.Calendar:
    """The calendar in ``text``, checked: size, syntax, event count, every event's times."""
    import icalendar  # here: the libraries cost every API process 8 MiB, used only by imports
    size = len(text.encode("utf-8", errors="replace"))
    if size > max_bytes:
        raise Invalid(f"The iCalendar file is too large: {size} bytes, at most {max_bytes}.")
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError) as exc:
        raise Invalid(f"Malformed iCalendar file: {exc}") from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise Invalid("Malformed iCalendar file: it is not a VCALENDAR.")
    events = calendar.walk("VEVENT")
    if not events:
        raise Invalid("The iCalendar file holds no event (VEVENT).")
    if len(events) > max_events:
        raise Invalid(f"The iCalendar file holds {len(events)} events, at most {max_events}.")
    for number, event in enumerate(events, start=1):
        start = _value(event, "DTSTART")
        if not isinstance(start, date):
            raise Invalid(f"Malformed iCalendar file: event {number} has no valid DTSTART.")
        if not isinstance(start, datetime):
            raise Invalid(f"Invalid iCalendar: event {number} is an all-day event; a session "
                          "needs a start and an end time.")
        end = _value(event, "DTEND") or _value(event, "DURATION")
        if not isinstance(end, datetime | timedelta):
            raise Invalid(f"Malformed iCalendar file: event {number} has no valid DTEND or "
                          "DURATION.")
        if _frequencies(event) & TOO_FREQUENT:
            raise Invalid(f"Invalid iCalendar: event {number} repeats more often than "
                          "daily; a timetable's events repeat daily at most.")
    return calendar


def check_expandable(calendar_text: str, where: ZoneInfo, now: datetime) -> None:
    """Expand the first occurrences once, so that a broken rule is refused at import."""
    list(itertools.islice(calendar_occurrences(calendar_text, where, now), TRIAL_OCCURRENCES))


def calendar_occurrences(calendar_text: str, where: ZoneInfo, earliest_end: datetime
                         ) -> Iterator[Interval]:
    """The calendar's occurrences ending after ``earliest_end``, in time order, lazily."""
    import icalendar
    import recurring_ical_events

    calendar = icalendar.Calendar.from_ical(calendar_text)
    try:
        for event in recurring_ical_events.of(calendar).after(earliest_end):
            yield _interval(event, where)
    except Invalid:
        raise
    except Exception as exc:  # the libraries' own errors for rules they cannot expand
        raise Invalid(f"Invalid iCalendar recurrence: {exc}") from None


def _interval(event: icalendar.Event, where: ZoneInfo) -> Interval:
    start = _instant(event["DTSTART"].dt, where, "DTSTART")
    end = _instant(event["DTEND"].dt, where, "DTEND") if "DTEND" in event else (
        start + event["DURATION"].dt)
    if end <= start:
        raise Invalid("Invalid iCalendar: an event ends before it starts.")
    return Interval(start, end)
