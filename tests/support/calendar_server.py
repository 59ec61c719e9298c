"""A little HTTP server on 127.0.0.1 that serves iCalendar feeds (and failures) by path, as a
school's timetable system would: for the feed imports of the web page's timetable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.json_http import serving


def weekly_feed(first: date, name: str, weeks: int = 4) -> str:
    """An iCalendar feed: ``name`` on ``first``'s weekday, 09:00-10:00 in Paris, ``weeks``
    times."""
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//school//timetable//EN", "BEGIN:VEVENT",
        "UID:feed-1@school.example", "DTSTAMP:20260901T000000Z",
        f"DTSTART;TZID=Europe/Paris:{first:%Y%m%d}T090000",
        f"DTEND;TZID=Europe/Paris:{first:%Y%m%d}T100000",
        f"RRULE:FREQ=WEEKLY;COUNT={weeks}", f"SUMMARY:{name}", "END:VEVENT", "END:VCALENDAR",
        ""])


class _Handler(BaseHTTPRequestHandler):
    server: CalendarServer

    def do_GET(self) -> None:
        if self.path == "/slow.ics":
            time.sleep(self.server.slow_s)
        if self.path == "/loop.ics":
            self.send_response(302)
            self.send_header("Location", "/loop.ics")
            self.end_headers()
            return
        body = self.server.feeds.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


class CalendarServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.feeds: dict[str, bytes] = {}
        self.slow_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def calendar_server() -> Iterator[CalendarServer]:
    """The server, serving ``feeds`` (path -> bytes); /slow.ics waits ``slow_s`` first and
    /loop.ics redirects to itself; stopped on the way out."""
    server = CalendarServer()
    with serving(server):
        yield server
