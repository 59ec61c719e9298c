"""Recurrence expansion (wall-clock across DST), overlap, iCalendar import, with explicit clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.classroom import calendar
from services.classroom.overlap import first_overlap, self_overlap
from services.classroom.schedule import Schedule, first_after, occurrences, weekly_rule
from services.classroom.times import Interval, zone
from services.common.exceptions import Invalid

PARIS = zone("Europe/Paris")
NOW = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)  # the controllable clock


def weekly(start: datetime, count: int = 10) -> Schedule:
    return Schedule("weekly", start, start + timedelta(hours=2),
                    weekly_rule(start, None, count))


def test_weekly_session_keeps_its_wall_clock_time_across_the_october_change() -> None:
    found = occurrences(weekly(datetime(2026, 10, 13, 14, 0), 4), PARIS, NOW,
                        NOW + timedelta(days=60))
    # Summer time until 25 October 2026: 14:00 Paris is 12:00 UTC, then 13:00 UTC.
    assert [i.start.hour for i in found] == [12, 12, 13, 13]
    assert all(i.start.astimezone(PARIS).hour == 14 for i in found)
    assert all(i.end - i.start == timedelta(hours=2) for i in found)


def test_weekly_session_across_the_march_change() -> None:
    start = datetime(2027, 3, 16, 14, 0)
    found = occurrences(weekly(start, 3), PARIS, datetime(2027, 3, 1, tzinfo=UTC),
                        datetime(2027, 4, 30, tzinfo=UTC))
    assert [i.start.hour for i in found] == [13, 13, 12]  # the change is on 28 March
    assert {i.start.astimezone(PARIS).hour for i in found} == {14}


def test_a_time_in_the_spring_gap_falls_after_it() -> None:
    once = Schedule("once", datetime(2027, 3, 28, 2, 30), datetime(2027, 3, 28, 4, 0))
    (interval,) = occurrences(once, PARIS, datetime(2027, 3, 1, tzinfo=UTC),
                              datetime(2027, 4, 1, tzinfo=UTC))
    assert interval.start.astimezone(PARIS).hour == 3


def test_weekly_needs_an_end_and_bounds_it() -> None:
    start = datetime(2026, 10, 13, 14, 0)
    with pytest.raises(Invalid, match="until"):
        weekly_rule(start, None, None)
    with pytest.raises(Invalid, match="count"):
        weekly_rule(start, None, 10_000)
    with pytest.raises(Invalid, match="before"):
        weekly_rule(start, datetime(2026, 1, 1), None)
    rule = weekly_rule(start, datetime(2026, 12, 31).date(), None)
    found = occurrences(Schedule("weekly", start, start + timedelta(hours=1), rule), PARIS,
                        NOW, NOW + timedelta(days=400))
    assert len(found) == 12 and found[-1].start.date() == datetime(2026, 12, 29).date()


def test_first_after_uses_the_given_clock() -> None:
    schedule = weekly(datetime(2026, 9, 1, 14, 0), 5)  # 1 Sep .. 29 Sep 2026
    assert first_after(schedule, PARIS, NOW) is None
    assert first_after(schedule, PARIS, NOW - timedelta(days=10)) is not None


def test_overlap_finds_the_first_clash_and_allows_touching_sessions() -> None:
    def at(hour: int, length: int = 2) -> Interval:
        start = datetime(2026, 10, 20, hour, tzinfo=UTC)
        return Interval(start, start + timedelta(hours=length))

    assert first_overlap([at(8), at(14)], [at(10), at(16)]) is None
    assert first_overlap([at(8), at(15)], [at(10), at(16)]) == (at(15), at(16))
    assert self_overlap([at(14), at(8), at(10)]) is None
    assert self_overlap([at(8, 5), at(14), at(10)]) == at(10)


def ics(*events: str) -> str:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *events,
                        "END:VCALENDAR"]) + "\r\n"


def event(uid: str, start: str, end: str, *extra: str) -> str:
    return "\r\n".join(["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260901T000000Z",
                        f"DTSTART;TZID=Europe/Paris:{start}", f"DTEND;TZID=Europe/Paris:{end}",
                        *extra, "SUMMARY:Networks", "END:VEVENT"])


def test_ical_import_expands_events_at_their_wall_clock_times() -> None:
    text = ics(event("a", "20261020T140000", "20261020T160000", "RRULE:FREQ=WEEKLY;COUNT=3"),
               event("b", "20261022T090000", "20261022T100000"))
    calendar.parse(text, max_bytes=100_000, max_events=10)
    schedule = Schedule("ical", datetime(2026, 10, 20, 14), datetime(2026, 10, 20, 16),
                        calendar=text)
    found = occurrences(schedule, PARIS, NOW, NOW + timedelta(days=60))
    assert [i.start.astimezone(PARIS).strftime("%m-%d %H:%M") for i in found] == [
        "10-20 14:00", "10-22 09:00", "10-27 14:00", "11-03 14:00"]
    assert found[2].start.hour == 13  # after the change: 14:00 Paris is 13:00 UTC


def test_ical_rrule_without_end_is_expanded_lazily_up_to_the_window() -> None:
    text = ics(event("x", "20261020T140000", "20261020T160000", "RRULE:FREQ=WEEKLY"))
    calendar.parse(text, max_bytes=100_000, max_events=10)
    schedule = Schedule("ical", datetime(2026, 10, 20, 14), datetime(2026, 10, 20, 16),
                        calendar=text)
    assert len(occurrences(schedule, PARIS, NOW, NOW + timedelta(days=28))) == 2  # 20, 27 Oct
    assert len(occurrences(schedule, PARIS, NOW, NOW + timedelta(days=3650), limit=7)) == 7


@pytest.mark.parametrize(("text", "message"), [
    ("this is not a calendar", "Malformed"),
    (ics(), "no event"),
    (ics("BEGIN:VEVENT\r\nUID:a\r\nDTSTART:2026XX\r\nEND:VEVENT"), "DTSTART"),
    (ics("BEGIN:VEVENT\r\nUID:a\r\nDTSTART;VALUE=DATE:20261020\r\nEND:VEVENT"), "all-day"),
    (ics("BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20261020T140000\r\nEND:VEVENT"), "DTEND"),
])
def test_malformed_calendars_are_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        calendar.parse(text, max_bytes=100_000, max_events=10)


def test_huge_calendars_are_refused_by_size_and_by_event_count() -> None:
    many = ics(*(event(str(n), "20261020T140000", "20261020T150000") for n in range(30)))
    with pytest.raises(Invalid, match="too large"):
        calendar.parse(many, max_bytes=1000, max_events=100)
    with pytest.raises(Invalid, match="30 events, at most 20"):
        calendar.parse(many, max_bytes=1_000_000, max_events=20)


def test_a_broken_rule_is_refused_at_import() -> None:
    text = ics(event("r", "20261020T140000", "20261020T160000", "RRULE:FREQ=SOMETIMES"))
    with pytest.raises(Invalid):
        calendar.parse(text, max_bytes=100_000, max_events=10)
        calendar.check_expandable(text, PARIS, NOW)


def test_unknown_time_zone_is_refused() -> None:
    for bad in ("Mars/Olympus", "", "../etc/passwd", 3):
        with pytest.raises(Invalid, match="time_zone"):
            zone(bad)
