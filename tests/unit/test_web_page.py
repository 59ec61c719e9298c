"""The teacher web page (/ui/) over HTTP on a real loopback server with a users file: login
and logout with a signed, HttpOnly, SameSite session cookie, CSRF tokens on every form, a
teacher's rooms only (another room is 404, no BMC secret shown), actions confirmed before they
start, the live stream of PC cards, French and English. The browser tests (tests/browser) run
the same page in chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import delete, func, select

from services.api.login_limit import LoginLimiter
from services.api.ui.i18n import FRENCH, accepted_language
from services.common.classroom_models import ClassSession, Job, Occurrence
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from tests.support.api_stack import served_api
from tests.support.classroom_users import write_users_file

E = "/enclume/v1"
DASH = "\N{EN DASH}"  # between a class's start and end times
SUM = "b" * 64
PASSWORD = "correct horse"
USERS = {"root": (["admin"], []), "alice": (["teacher"], ["B12"]), "sam": (["student"], [])}
TEMPLATES = Path(__file__).resolve().parents[2] / "services" / "api" / "ui" / "templates"


class Stack:
    def __init__(self, url: str, db: Database) -> None:
        self.url, self.db = url, db

    def browser(self, **headers: str) -> httpx.Client:
        """A client that keeps cookies and does not follow redirects, as a test browser."""
        return httpx.Client(base_url=self.url, timeout=10, headers=headers)

    def jobs(self) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(Job)) or 0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory: Path = tmp_path_factory.mktemp("web-page")
    users_file = write_users_file(directory, USERS, PASSWORD)
    url = f"sqlite:///{directory / 'db.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(
        process={"data_dir": directory},
        conductor={"hostname": "c1"},
        auth={"strategy": "users_file", "users_file": users_file},
        ui={"login_attempts": 3},
    )
    with served_api(settings, db) as served:
        yield Stack(str(served.client.base_url), db)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if "json" in response.headers.get("content-type", "") else response


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    """Room B12 (alice's, three PCs with a BMC password) and room A1 (not hers)."""
    admin = httpx.Client(base_url=stack.url, auth=("root", PASSWORD), timeout=10,
                         headers={"X-OpenStack-Ironic-API-Version": "latest"})
    with admin:
        nodes = [ok(admin.post("/v1/nodes", json={
            "driver": "fake-hardware", "name": f"b12-pc{i}",
            "driver_info": {"ipmi_password": "bmc-secret-pw"}}), 201) for i in range(4)]
        ok(admin.post(f"{E}/images", json={"name": "debian", "versions": [
            {"version": "v1", "source": "http://images.example/d1.img", "checksum": SUM},
            {"version": "v2", "source": "http://images.example/d2.img", "checksum": SUM}]}),
           201)
        ok(admin.post(f"{E}/rooms", json={
            "name": "B12", "time_zone": "Europe/Paris", "allowed_images": ["debian"],
            "default_image": "debian", "pcs": [n["name"] for n in nodes[:3]]}), 201)
        ok(admin.post(f"{E}/rooms", json={"name": "A1", "time_zone": "Europe/Paris",
                                          "pcs": [nodes[3]["name"]]}), 201)
    return {"nodes": nodes}


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@contextmanager
def logged_in(stack: Stack, user: str) -> Iterator[tuple[httpx.Client, str]]:
    with stack.browser() as client:
        token = csrf_of(ok(client.get("/ui/login")))
        answer = client.post("/ui/login", data={"user": user, "password": PASSWORD,
                                                "csrf": token, "next": "/ui/rooms"})
        assert answer.status_code == 303, answer.text
        yield client, csrf_of(ok(client.get("/ui/rooms")))


def test_the_session_cookie_is_signed_httponly_samesite_and_renewed_at_login(
        stack: Stack, world: dict[str, Any]) -> None:
    with stack.browser() as client:
        page = ok(client.get("/ui/login"))
        before = page.headers["set-cookie"]
        assert "httponly" in before.lower() and "samesite=lax" in before.lower()
        assert "path=/ui" in before.lower()
        answer = client.post("/ui/login", data={"user": "alice", "password": PASSWORD,
                                                "csrf": csrf_of(page), "next": "/ui/rooms"})
        after = answer.headers["set-cookie"]
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/rooms"
        assert "httponly" in after.lower() and after.split(";")[0] != before.split(";")[0]
        assert client.get("/ui/rooms").status_code == 200
        # A cookie whose signature does not match is no session: the login page, no error.
        forged = after.split(";")[0].split("=", 1)[1][:-3] + "AAA"
        client.cookies.set("enclume_ui", forged, path="/ui")
        refused = client.get("/ui/rooms/B12")
        assert refused.status_code == 303
        assert refused.headers["location"] == "/ui/login?next=/ui/rooms/B12&expired=1"


def test_a_login_needs_the_forms_token_and_the_right_password(stack: Stack,
                                                              world: dict[str, Any]) -> None:
    with stack.browser() as client:
        token = csrf_of(ok(client.get("/ui/login")))
        assert client.post("/ui/login", data={"user": "alice", "password": PASSWORD}
                           ).status_code == 403
        wrong = client.post("/ui/login", data={"user": "alice", "password": "nope",
                                               "csrf": token})
        assert wrong.status_code == 401 and "Wrong user name or password." in wrong.text
        assert "enclume_ui" not in wrong.headers.get("set-cookie", "")
        student = client.post("/ui/login", data={"user": "sam", "password": PASSWORD,
                                                 "csrf": token})
        assert student.status_code == 303
        assert client.get("/ui/rooms").status_code == 303  # no classroom role: login again


def test_failed_logins_are_limited_per_user(stack: Stack, world: dict[str, Any]) -> None:
    with stack.browser() as client:
        token = csrf_of(ok(client.get("/ui/login")))
        for _ in range(3):
            assert client.post("/ui/login", data={"user": "eve", "password": "guess",
                                                  "csrf": token}).status_code == 401
        blocked = client.post("/ui/login", data={"user": "eve", "password": PASSWORD,
                                                 "csrf": token})
        assert blocked.status_code == 429 and "Too many failed attempts" in blocked.text
        # Another user from the same address still logs in.
        assert client.post("/ui/login", data={"user": "alice", "password": PASSWORD,
                                              "csrf": token}).status_code == 303


def test_the_limiter_forgets_failures_after_its_window() -> None:
    now = [0.0]
    limiter = LoginLimiter(2, 60, clock=lambda: now[0])
    for _ in range(2):
        limiter.failed("a", "10.0.0.1")
    assert limiter.blocked("a", "10.0.0.2") and not limiter.blocked("b", "10.0.0.1")
    for user in range(18):  # one address (a school's NAT) may fail ten times as often
        limiter.failed(f"u{user}", "10.0.0.1")
    assert limiter.blocked("b", "10.0.0.1") and not limiter.blocked("b", "10.0.0.2")
    now[0] = 61
    assert not limiter.blocked("a", "10.0.0.1")


def test_a_teacher_sees_her_room_only_and_no_bmc_secret(stack: Stack,
                                                       world: dict[str, Any]) -> None:
    with logged_in(stack, "alice") as (client, _token):
        rooms = ok(client.get("/ui/rooms")).text
        assert "/ui/rooms/B12" in rooms and "A1" not in rooms
        room = ok(client.get("/ui/rooms/B12")).text
        assert all(f"b12-pc{i}" in room for i in range(3)) and "b12-pc3" not in room
        assert "bmc-secret-pw" not in room and "ipmi" not in room
        assert 'sse-connect="/ui/rooms/B12/events"' in room
        other = client.get("/ui/rooms/A1")
        assert other.status_code == 404 and "not yours" in other.text
        assert client.get(f"/ui/rooms/{world['nodes'][3]['uuid']}").status_code == 404
        assert client.get("/ui/rooms/A1/events").status_code == 404
        assert client.get("/ui/rooms/A1/jobs").status_code == 404


def test_an_admin_sees_every_room(stack: Stack, world: dict[str, Any]) -> None:
    with logged_in(stack, "root") as (client, _token):
        rooms = ok(client.get("/ui/rooms")).text
        assert "/ui/rooms/B12" in rooms and "/ui/rooms/A1" in rooms


def test_an_action_is_confirmed_first_and_refused_without_the_token(
        stack: Stack, world: dict[str, Any]) -> None:
    pcs = [n["uuid"] for n in world["nodes"][:2]]
    form = {"action": "restore", "pcs": pcs, "image": "debian:v1"}
    with logged_in(stack, "alice") as (client, token):
        before = stack.jobs()
        assert client.post("/ui/rooms/B12/actions", data=form).status_code == 403
        assert client.post("/ui/rooms/B12/actions", data={**form, "csrf": "x" * 43}
                           ).status_code == 403
        confirm = ok(client.post("/ui/rooms/B12/actions", data={**form, "csrf": token}))
        assert "Restore 2 PCs of room B12 with debian:v1?" in confirm.text
        assert "Everything on their disks is erased" in confirm.text
        assert stack.jobs() == before  # nothing started yet
        started = client.post("/ui/rooms/B12/actions",
                              data={**form, "csrf": token, "confirm": "yes"})
        assert started.status_code == 303 and stack.jobs() == before + 1
        page = ok(client.get(started.headers["location"])).text
        assert "Started: restore of 2 PCs." in page
        assert client.post("/ui/rooms/A1/actions", data={
            **form, "csrf": token, "confirm": "yes"}).status_code == 404
        nothing = client.post("/ui/rooms/B12/actions", data={"action": "wake", "csrf": token})
        assert nothing.status_code == 400 and "Select at least one PC." in nothing.text
        assert stack.jobs() == before + 1
        history = ok(client.get("/ui/rooms/B12/jobs")).text
        assert "alice" in history and "debian:v1" in history


def test_the_stream_sends_every_card_first(stack: Stack, world: dict[str, Any]) -> None:
    with (logged_in(stack, "alice") as (client, _token),
          client.stream("GET", "/ui/rooms/B12/events") as events):
        assert events.headers["content-type"].startswith("text/event-stream")
        seen: set[str] = set()
        for line in events.iter_lines():
            if line.startswith("event: pc-"):
                seen.add(line.removeprefix("event: pc-"))
            if len(seen) == 3:
                break
        assert seen == {n["uuid"] for n in world["nodes"][:3]}


def test_logout_needs_the_token_and_ends_the_session(stack: Stack,
                                                     world: dict[str, Any]) -> None:
    with logged_in(stack, "alice") as (client, token):
        assert client.post("/ui/logout").status_code == 403
        out = client.post("/ui/logout", data={"csrf": token})
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        assert client.get("/ui/rooms").status_code == 303


def test_french_from_the_browser_or_the_switch(stack: Stack, world: dict[str, Any]) -> None:
    with stack.browser(**{"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}) as client:
        page = ok(client.get("/ui/login"))
        assert '<html lang="fr">' in page.text and "Se connecter" in page.text
        switched = client.get("/ui/language/en?next=/ui/login")
        assert switched.status_code == 303 and switched.headers["location"] == "/ui/login"
        assert "Log in" in ok(client.get("/ui/login")).text
        assert client.get("/ui/language/en?next=https://evil.example/"
                          ).headers["location"] == "/ui/rooms"
    assert accepted_language("de, en;q=0.2, fr;q=0.8") == "fr"
    assert accepted_language("de") is None


def test_every_text_of_the_templates_has_a_french_translation() -> None:
    texts: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        source = template.read_text()
        texts |= set(re.findall(r'_\(\s*"([^"]+)"', source))
        texts |= set(re.findall(r"_\(\s*'([^']+)'", source))
    from services.api.ui import room_pages, status, timetable
    from services.classroom import fields
    texts |= set(room_pages.NOTICES.values()) | set(status.IN_PROGRESS_WORDS.values())
    texts |= set(status.POWER_WORDS.values()) | {"unknown"} | set(timetable.DAYS)
    # Words the templates translate from data: states, kinds, recurrences, choices.
    texts |= set(fields.OCCURRENCE_STATES) | set(fields.JOB_KINDS) | set(fields.JOB_STATES)
    texts |= {"once", "weekly", "ical", "succeeded", "restore the PCs", "power the PCs off",
              "nothing"}
    assert texts, "no text found in the templates"
    missing = sorted(t for t in texts if t not in FRENCH)
    assert not missing, f"texts without a French translation: {missing}"


def next_tuesday() -> date:
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    return today + timedelta(days=(1 - today.weekday()) % 7 or 7)


def test_a_weekly_class_is_planned_shown_in_its_week_and_cancelled(
        stack: Stack, world: dict[str, Any]) -> None:
    tuesday = next_tuesday()
    form = {"name": "Networks", "image": "debian:v2", "day": tuesday.isoformat(),
            "start": "14:00", "end": "16:00", "repeat": "weekly",
            "until": (tuesday + timedelta(weeks=3)).isoformat(), "before": "restore-full",
            "after": "power-off"}
    with logged_in(stack, "alice") as (client, token):
        assert client.post("/ui/rooms/B12/sessions", data=form).status_code == 403
        created = client.post("/ui/rooms/B12/sessions", data={**form, "csrf": token})
        assert created.status_code == 303, created.text
        week = ok(client.get(created.headers["location"])).text
        assert "The class is planned." in week
        assert f"14:00{DASH}16:00</strong> Networks" in week
        assert f"Week of {tuesday - timedelta(days=1)}" in week
        assert "Next: the PCs are restored from" in week
        later = ok(client.get(f"/ui/rooms/B12/timetable?week={tuesday + timedelta(weeks=3)}"))
        assert f"14:00{DASH}16:00</strong> Networks" in later.text
        clash = client.post("/ui/rooms/B12/sessions", data={
            **form, "csrf": token, "name": "Overlap", "start": "15:00", "end": "17:00",
            "repeat": "once"})
        assert clash.status_code == 409 and "overlaps session Networks" in clash.text
        uuid = re.search(r'/ui/rooms/B12/sessions/([0-9a-f-]{36})/cancel', week).group(1)
        assert client.post(f"/ui/rooms/A1/sessions/{uuid}/cancel",
                           data={"csrf": token}).status_code == 404
        cancelled = client.post(f"/ui/rooms/B12/sessions/{uuid}/cancel", data={"csrf": token})
        assert cancelled.status_code == 303
        assert "Networks" not in ok(client.get(f"/ui/rooms/B12/timetable?week={tuesday}")).text


def test_a_form_value_with_a_control_character_is_refused_and_plans_nothing(
        stack: Stack, world: dict[str, Any]) -> None:
    tuesday = next_tuesday() + timedelta(weeks=8)
    form = {"name": "Bad\x1bname", "image": "debian:v2", "day": tuesday.isoformat(),
            "start": "08:00", "end": "09:00", "repeat": "once", "before": "restore-full",
            "after": "nothing"}
    with logged_in(stack, "alice") as (client, token):
        refused = client.post("/ui/rooms/B12/sessions", data={**form, "csrf": token})
        assert refused.status_code == 400 and "control character" in refused.text
        week = ok(client.get(f"/ui/rooms/B12/timetable?week={tuesday}")).text
        assert "Bad" not in week


def test_an_icalendar_file_is_imported(stack: Stack, world: dict[str, Any]) -> None:
    day = next_tuesday() + timedelta(days=1)
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN", "BEGIN:VEVENT", "UID:x1",
        "DTSTAMP:20260901T000000Z", f"DTSTART;TZID=Europe/Paris:{day:%Y%m%d}T090000",
        f"DTEND;TZID=Europe/Paris:{day:%Y%m%d}T100000", "SUMMARY:Imported",
        "END:VEVENT", "END:VCALENDAR", ""])
    with logged_in(stack, "alice") as (client, token):
        created = client.post("/ui/rooms/B12/sessions", data={
            "csrf": token, "image": "debian:v1", "name": "From the calendar"},
            files={"ical": ("week.ics", ics.encode(), "text/calendar")})
        assert created.status_code == 303, created.text
        week = ok(client.get(f"/ui/rooms/B12/timetable?week={day}")).text
        assert f"09:00{DASH}10:00</strong> From the calendar" in week


def test_images_for_everyone_users_and_roles_for_admins_only(stack: Stack,
                                                             world: dict[str, Any]) -> None:
    with logged_in(stack, "alice") as (client, _token):
        images = ok(client.get("/ui/images")).text
        assert "debian" in images and "v2" in images and "http://images.example" not in images
        assert client.get("/ui/users").status_code == 404
        assert 'href="/ui/users"' not in images
    with logged_in(stack, "root") as (client, _token):
        users = ok(client.get("/ui/users")).text
        assert "<td>alice</td><td>teacher</td><td>B12</td>" in users
        assert "<td>root</td><td>admin</td>" in users and "$2b$" not in users


def test_the_confirmation_says_a_class_is_in_progress_and_then_forces(
        stack: Stack, world: dict[str, Any]) -> None:
    day = next_tuesday() + timedelta(weeks=2)
    with logged_in(stack, "alice") as (client, token):
        assert client.post("/ui/rooms/B12/sessions", data={
            "csrf": token, "name": "Lab now", "image": "debian:v1", "day": day.isoformat(),
            "start": "18:00", "end": "19:00", "repeat": "once"}).status_code == 303
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        with stack.db.session() as session:  # as if the class had begun ten minutes ago
            lab = session.scalar(select(ClassSession).where(ClassSession.name == "Lab now"))
            session.add(Occurrence(session_id=lab.id, planned_start=now - timedelta(minutes=10),
                                   planned_end=now + timedelta(minutes=50), state="running"))
        form = {"action": "restore", "pcs": [world["nodes"][2]["uuid"]], "image": "debian:v2",
                "csrf": token}
        before = stack.jobs()
        confirm = ok(client.post("/ui/rooms/B12/actions", data=form)).text
        end = (now + timedelta(minutes=50)).replace(tzinfo=UTC).astimezone(
            ZoneInfo("Europe/Paris")).strftime("%H:%M")
        assert (f"A class is in progress in this room until {end} (Lab now): students will "
                "lose what is on these PCs.") in confirm
        assert "Restore 1 PCs of room B12 with debian:v2?" in confirm
        started = client.post("/ui/rooms/B12/actions", data={**form, "confirm": "yes"})
        assert started.status_code == 303 and stack.jobs() == before + 1
        with stack.db.session() as session:
            session.execute(delete(Occurrence).where(Occurrence.session_id == lab.id))


def test_a_rooms_layout_is_set_through_the_api_and_drawn_on_the_page(
        stack: Stack, world: dict[str, Any]) -> None:
    with httpx.Client(base_url=stack.url, auth=("root", PASSWORD), timeout=10) as admin:
        assert ok(admin.get(f"{E}/rooms/B12"))["layout"] is None
        for wrong in ({"rows": 0, "columns": 2}, {"rows": 2}, {"rows": 2, "columns": "3"},
                      {"rows": 2, "columns": 31}, [2, 2], {"rows": True, "columns": 2}):
            answer = admin.patch(f"{E}/rooms/B12", json={"layout": wrong})
            assert answer.status_code == 400, (wrong, answer.text)
        laid = ok(admin.patch(f"{E}/rooms/B12", json={"layout": {"rows": 2, "columns": 2}}))
        assert laid["layout"] == {"rows": 2, "columns": 2}
        with logged_in(stack, "alice") as (client, _token):
            page = ok(client.get("/ui/rooms/B12")).text
        assert 'class="pcs laid-out"' in page and 'style="--columns: 2"' in page
        # Three PCs, two per row, in the room's order: the third starts the second row.
        seats = re.findall(r'<strong>(b12-pc\d)</strong></label>\s*<small class="seat">([^<]+)',
                           page)
        assert seats == [("b12-pc0", "row 1, place 1"), ("b12-pc1", "row 1, place 2"),
                         ("b12-pc2", "row 2, place 1")]
        assert ok(admin.patch(f"{E}/rooms/B12", json={"layout": None}))["layout"] is None


def test_a_teacher_sets_her_rooms_layout_from_the_page(stack: Stack,
                                                       world: dict[str, Any]) -> None:
    with logged_in(stack, "alice") as (client, token):
        refused = client.post("/ui/rooms/B12/layout", data={"rows": "2", "columns": "3"})
        assert refused.status_code == 403
        assert client.post("/ui/rooms/A1/layout", data={
            "rows": "2", "columns": "3", "csrf": token}).status_code == 404
        wrong = client.post("/ui/rooms/B12/layout", data={"rows": "2", "columns": "zero",
                                                          "csrf": token})
        assert wrong.status_code == 400 and "Invalid layout columns" in wrong.text
        for rows in ("\N{SUPERSCRIPT TWO}", "99999", "-1", "0"):
            odd = client.post("/ui/rooms/B12/layout", data={"rows": rows, "columns": "3",
                                                            "csrf": token})
            assert odd.status_code == 400 and "Invalid layout rows" in odd.text, rows
        saved = client.post("/ui/rooms/B12/layout", data={"rows": "1", "columns": "3",
                                                          "csrf": token})
        assert saved.status_code == 303
        page = ok(client.get(saved.headers["location"])).text
        assert "The room&#39;s layout is saved." in page and 'style="--columns: 3"' in page
        assert 'id="layout-rows" name="rows" type="number" min="1" max="30" ' \
               'inputmode="numeric" value="1"' in page
        cleared = client.post("/ui/rooms/B12/layout", data={"rows": "", "columns": "",
                                                            "csrf": token})
        assert cleared.status_code == 303
        assert "laid-out" not in ok(client.get("/ui/rooms/B12")).text


def test_a_teacher_sets_her_rooms_logins_from_the_page(stack: Stack,
                                                       world: dict[str, Any]) -> None:
    """The room's pc_logins and login_language through the room page, checked by the same
    room update as the API's PATCH: "the default" (null) says what the default is."""
    with httpx.Client(base_url=stack.url, auth=("root", PASSWORD), timeout=10) as admin, \
            logged_in(stack, "alice") as (client, token):
        page = ok(client.get("/ui/rooms/B12")).text
        assert "Logins at the PCs: not asked (the default); prompt in English (the default)" \
            in page
        assert 'id="pc-logins-default" name="pc_logins" value="default" checked' in page
        assert "The default (not asked)" in page
        form = {"pc_logins": "on", "login_language": "fr"}
        assert client.post("/ui/rooms/B12/logins", data=form).status_code == 403
        assert client.post("/ui/rooms/A1/logins", data={**form, "csrf": token}
                           ).status_code == 404
        with stack.browser() as stranger:  # not logged in, or no classroom role
            assert stranger.post("/ui/rooms/B12/logins", data={**form, "csrf": token}
                                 ).status_code == 401
        for wrong, words in (({"pc_logins": "maybe", "login_language": "fr"},
                              "Invalid value for pc_logins: &#39;maybe&#39;"),
                             ({"pc_logins": "on", "login_language": "de"},
                              "Invalid value for login_language: &#39;de&#39;; one of en, fr.")):
            refused = client.post("/ui/rooms/B12/logins", data={**wrong, "csrf": token})
            assert refused.status_code == 400 and words in refused.text, refused.text
        room = ok(admin.get(f"{E}/rooms/B12"))
        assert (room["pc_logins"], room["login_language"]) == (None, None)  # nothing stored

        saved = client.post("/ui/rooms/B12/logins", data={**form, "csrf": token})
        assert saved.status_code == 303
        page = ok(client.get(saved.headers["location"])).text
        assert "The logins at the PCs are saved." in page
        assert "Logins at the PCs: asked (this room&#39;s choice); prompt in Français " \
               "(this room&#39;s choice)" in page
        assert 'value="on" checked' in page and '<option value="fr" selected>' in page
        room = ok(admin.get(f"{E}/rooms/B12"))
        assert (room["pc_logins"], room["login_language"]) == (True, "fr")
        off = client.post("/ui/rooms/B12/logins", data={"pc_logins": "off",
                                                        "login_language": "default",
                                                        "csrf": token})
        assert off.status_code == 303
        room = ok(admin.get(f"{E}/rooms/B12"))
        assert (room["pc_logins"], room["login_language"]) == (False, None)
        back = client.post("/ui/rooms/B12/logins", data={"pc_logins": "default",
                                                         "login_language": "default",
                                                         "csrf": token})
        assert back.status_code == 303
        assert ok(admin.get(f"{E}/rooms/B12"))["pc_logins"] is None
