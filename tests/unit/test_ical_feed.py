"""An iCalendar feed fetched by its address for the web page's import, against a real HTTP
server on 127.0.0.1: the text when it is there, a failure in words otherwise."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date

import pytest

from services.classroom.ical_feed import fetch_feed
from services.common.exceptions import Invalid
from tests.support.calendar_server import CalendarServer, calendar_server, weekly_feed

FEED = weekly_feed(date(2026, 9, 8), "Networks")


@pytest.fixture(scope="module")
def server() -> Iterator[CalendarServer]:
    with calendar_server() as running:
        running.feeds["/week.ics"] = FEED.encode()
        running.feeds["/slow.ics"] = FEED.encode()
        running.feeds["/big.ics"] = b"X" * 5000
        running.feeds["/page.html"] = b"<html>secret intranet page</html>"
        running.slow_s = 2.0
        yield running


def refusal(url: str, **limits: float) -> str:
    with pytest.raises(Invalid) as refused:
        fetch_feed(url, max_bytes=int(limits.get("max_bytes", 4096)),
                   timeout_s=limits.get("timeout_s", 5.0))
    return refused.value.message


def test_a_feed_is_fetched_as_it_is_served(server: CalendarServer) -> None:
    text = fetch_feed(f"{server.url}/week.ics", max_bytes=4096, timeout_s=5.0)
    assert text == FEED


def test_each_failure_says_what_is_wrong_with_the_address(server: CalendarServer) -> None:
    url = server.url
    assert refusal(f"{url}/missing.ics") == (
        f"The calendar at {url}/missing.ics could not be fetched: the server answered HTTP "
        "404 Not Found.")
    assert refusal(f"{url}/slow.ics", timeout_s=0.5) == (
        f"The calendar at {url}/slow.ics did not answer within 0.5 s.")
    assert refusal(f"{url}/big.ics") == (
        f"The calendar at {url}/big.ics is too large: more than 4096 bytes.")
    assert refusal(f"{url}/loop.ics") == (
        f"The calendar at {url}/loop.ics redirects too many times.")
    not_a_calendar = refusal(f"{url}/page.html")
    assert not_a_calendar.startswith(f"The address {url}/page.html does not give an "
                                     "iCalendar feed: ")
    assert "secret" not in not_a_calendar
    for address in ("file:///etc/passwd", "ftp://127.0.0.1/x.ics", "week.ics", "http://"):
        assert refusal(address) == "The calendar's address must be an http:// or https:// URL."


def test_an_address_where_nothing_listens_is_unreachable() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    message = refusal(f"http://127.0.0.1:{port}/week.ics")
    assert message.startswith(f"The calendar at http://127.0.0.1:{port}/week.ics cannot be "
                              "reached: ")
