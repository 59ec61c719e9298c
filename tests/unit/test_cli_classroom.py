"""The classroom commands' own logic: what ``session create``'s options send (and the usage
errors of options that do not go together), iCalendar read from a file or fetched from a URL
by the CLI itself (a loopback server), and the rows tables show."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import typer

from services.cli.enclume.classroom_common import plan_cells
from services.cli.enclume.client import ApiClient
from services.cli.enclume.config import load_config
from services.cli.enclume.context import CliError
from services.cli.enclume.images import image_row
from services.cli.enclume.jobs import pc_rows, pcs_summary
from services.cli.enclume.output import heading
from services.cli.enclume.rooms import room_row
from services.cli.enclume.sessions import image_version, read_ical, session_body
from tests.support.json_http import send_json, serving

ICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nEND:VCALENDAR\r\n"


def test_once_weekly_and_ical_bodies(tmp_path: Path) -> None:
    assert session_body("B12", "debian-12", "2027-09-07T14:00", "2027-09-07T16:00", False,
                        None, None, None, None) == {
        "room": "B12", "image": "debian-12", "start": "2027-09-07T14:00",
        "end": "2027-09-07T16:00", "recurrence": "once"}
    assert session_body("B12", None, "2027-09-07T14:00", "2027-09-07T16:00", True, None,
                        "2027-12-14", 2, None) == {
        "room": "B12", "start": "2027-09-07T14:00", "end": "2027-09-07T16:00",
        "recurrence": "weekly", "until": "2027-12-14", "interval": 2}
    ics = tmp_path / "timetable.ics"
    ics.write_text(ICS)
    assert session_body("B12", "debian-12", None, None, False, None, None, None,
                        str(ics)) == {"room": "B12", "image": "debian-12",
                                      "recurrence": "ical", "ical": ICS}


@pytest.mark.parametrize(("at", "until", "weekly", "count", "last", "ical"), [
    (None, None, False, None, None, None),  # no times at all
    ("2027-09-07T14:00", None, False, None, None, None),  # no end
    ("2027-09-07T14:00", "2027-09-07T16:00", True, None, None, None),  # endless weekly
    ("2027-09-07T14:00", "2027-09-07T16:00", True, 3, "2027-12-14", None),  # two ends
    ("2027-09-07T14:00", "2027-09-07T16:00", False, 3, None, None),  # count without weekly
    ("2027-09-07T14:00", None, False, None, None, "timetable.ics"),  # times and a calendar
])
def test_options_that_do_not_go_together_are_usage_errors(
        at: str | None, until: str | None, weekly: bool, count: int | None,
        last: str | None, ical: str | None) -> None:
    with pytest.raises(typer.BadParameter):
        session_body("B12", None, at, until, weekly, count, last, None, ical)


class IcsHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        status, body = (200, ICS.encode()) if self.path == "/b12.ics" else (404, b"no")
        self.send_response(status)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def feed() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), IcsHandler)
    with serving(server):
        yield f"http://127.0.0.1:{server.server_address[1]}"


def test_ical_is_fetched_by_the_cli(feed: str, tmp_path: Path) -> None:
    assert read_ical(f"{feed}/b12.ics") == ICS
    with pytest.raises(CliError, match="HTTP 404"):
        read_ical(f"{feed}/missing.ics")
    with pytest.raises(typer.BadParameter, match="cannot read"):
        read_ical(str(tmp_path / "missing.ics"))


def test_table_rows() -> None:
    room = {"name": "B12", "pcs": [{"uuid": "u1", "name": "pc-01"}, {"uuid": "u2",
                                                                      "name": None}],
            "teachers": ["alice", "bob"], "allowed_images": ["debian-12"]}
    assert room_row(room)["pcs"] == "pc-01, u2"
    assert room_row(room)["teachers"] == "alice, bob"
    assert image_row({"name": "d", "versions": [{"version": "1"}, {"version": "2"}]}
                     )["versions"] == "1, 2"
    pcs = [{"node": "pc-01", "outcome": "succeeded", "bytes_done": 2 * 1024**3,
            "bytes_total": 4 * 1024**3, "step": "active"},
           {"node": "pc-02", "outcome": None, "bytes_done": None}]
    assert pcs_summary(pcs) == "2 PC(s): 1 succeeded, 1 working"
    assert pc_rows({"pcs": pcs})[0]["written"] == "2.0 GiB of 4.0 GiB"
    assert [heading(name) for name in ("pc", "pcs", "allowed_images")] == [
        "PC", "PCs", "Allowed Images"]


CATALOGUE = {"/enclume/v1/rooms/B12": {"default_image": "debian-12"},
             "/enclume/v1/rooms/C3": {"default_image": None},
             "/enclume/v1/images/debian-12": {"versions": [{"version": "2026-01"},
                                                           {"version": "2026-09"}]},
             "/enclume/v1/images/empty": {"versions": []}}


class CatalogueHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        found = CATALOGUE.get(self.path)
        send_json(self, 200 if found else 404, found or {})


def test_the_image_of_a_session_is_resolved_to_a_version() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), CatalogueHandler)
    with serving(server), ApiClient(load_config(
            url=f"http://127.0.0.1:{server.server_address[1]}")) as client:
        assert image_version(client, "B12", None) == "debian-12:2026-09"
        assert image_version(client, "B12", "debian-12") == "debian-12:2026-09"
        assert image_version(client, "B12", "debian-12:2026-01") == "debian-12:2026-01"
        with pytest.raises(CliError, match="room C3 has no default image"):
            image_version(client, "C3", None)
        with pytest.raises(CliError, match="image empty has no version yet"):
            image_version(client, "C3", "empty")


def test_the_restore_lead_and_next_action_cells() -> None:
    measured = {"restore_lead": {"seconds": 1800.0, "source": "measured", "samples": 3,
                                 "longest_restore_s": 1200.0},
                "next_action": {"action": "restore-full", "at": "2027-09-07T11:30:00+00:00"}}
    assert plan_cells(measured) == {
        "restore_lead": "1800.0 s (measured: longest of 3 restore(s) 1200.0 s)",
        "next_action": "restore-full at 2027-09-07T11:30:00+00:00"}
    setting = {"restore_lead": {"seconds": 900.0, "source": "setting", "samples": 0,
                                "longest_restore_s": None}, "next_action": None}
    assert plan_cells(setting) == {"restore_lead": "900.0 s (the setting: no restore yet)",
                                   "next_action": "nothing planned"}
    assert plan_cells({"name": "B12"}) == {}  # a room as `room set` answers: no plan
    assert room_row({"name": "B12", **measured})["restore_lead"].startswith("1800.0 s")
