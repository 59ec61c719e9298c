"""/enclume/v1 on a real loopback server with a users file: CRUD, bad input (a clear 4xx and
nothing stored), and what a teacher may see and do."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.common.classroom_models import ClassSession, Job, JobPC, Occurrence, Room, RoomPC
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from tests.support.api_stack import served_api
from tests.support.classroom_users import ok, refused, write_users_file

E = "/enclume/v1"
SUM = "a" * 64
PASSWORD = "correct horse"
USERS = {"root": (["admin"], []), "alice": (["teacher"], ["B12"]), "bob": (["teacher"], []),
         "sam": (["student"], []), "svc": (["service"], [])}


def ics(*lines: str) -> str:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN", *lines,
                        "END:VCALENDAR"]) + "\r\n"


def vevent(uid: str, start: str, end: str, *extra: str) -> list[str]:
    return ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260901T000000Z",
            f"DTSTART;TZID=Europe/Paris:{start}", f"DTEND;TZID=Europe/Paris:{end}", *extra,
            "END:VEVENT"]


class Stack:
    def __init__(self, url: str, db: Database) -> None:
        self.url, self.db = url, db

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, PASSWORD), timeout=10,
                            headers={"X-OpenStack-Ironic-API-Version": "latest"})

    def count(self, model: Any) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite here; tests/integration/test_classroom_postgres.py runs these tests on PostgreSQL."""
    return f"sqlite:///{tmp_path_factory.mktemp('classroom-db') / 'db.sqlite'}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Stack]:
    directory: Path = tmp_path_factory.mktemp("classroom")
    users_file = write_users_file(directory, USERS, PASSWORD)
    upgrade_schema(database_url)
    db = Database(database_url)
    settings = Settings(
        process={"data_dir": directory},
        conductor={"hostname": "c1"},
        auth={"strategy": "users_file", "users_file": users_file},
        classroom={"ical_max_bytes": 20_000, "ical_max_events": 50, "occurrence_horizon_days": 366},
    )
    with served_api(settings, db) as served:
        yield Stack(str(served.client.base_url), db)


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client("root") as client:
        yield client


@pytest.fixture(scope="module")
def world(admin: httpx.Client) -> dict[str, Any]:
    """Two images, rooms B12 (alice via the users file, bob as listed teacher) and A1."""
    nodes = [ok(admin.post("/v1/nodes", json={"driver": "fake-hardware", "name": f"pc{i}",
                                              "driver_info": {"secret": "bmc-pw"}}), 201)
             for i in range(4)]
    for name in ("debian", "windows"):
        ok(admin.post(f"{E}/images", json={"name": name, "versions": [
            {"version": "v1", "source": f"http://images.example/{name}.img", "checksum": SUM,
             "disk_format": "qcow2", "boot_mode": "uefi"}]}), 201)
    ok(admin.post(f"{E}/rooms", json={
        "name": "B12", "time_zone": "Europe/Paris", "idle_vlan": 100, "class_vlan": 101,
        "allowed_images": ["debian"], "default_image": "debian",
        "pcs": ["pc0", nodes[1]["uuid"]], "teachers": ["bob"]}), 201)
    ok(admin.post(f"{E}/rooms", json={"name": "A1", "time_zone": "America/New_York",
                                      "allowed_images": ["windows"], "pcs": ["pc2"]}), 201)
    return {"nodes": nodes}


def test_root_document_lists_the_resources(admin: httpx.Client) -> None:
    root = ok(admin.get(f"{E}/"))
    assert {"images", "rooms", "sessions", "occurrences", "jobs"} <= set(root)


def test_rooms_show_pcs_by_name_and_state_only(admin: httpx.Client, world: Any) -> None:
    response = admin.get(f"{E}/rooms/B12")
    room = ok(response)
    assert [pc["name"] for pc in room["pcs"]] == ["pc0", "pc1"]
    assert set(room["pcs"][0]) == {"uuid", "name", "provision_state", "power_state"}
    assert "driver_info" not in response.text and "bmc-pw" not in response.text
    assert room["allowed_images"] == ["debian"] and room["default_image"] == "debian"
    assert room["teachers"] == ["bob"] and room["idle_vlan"] == 100


def test_a_pc_in_two_rooms_is_409_and_nothing_is_stored(stack: Stack, admin: httpx.Client,
                                                        world: Any) -> None:
    rooms, pcs = stack.count(Room), stack.count(RoomPC)
    refused(admin.post(f"{E}/rooms", json={"name": "C3", "time_zone": "UTC",
                                           "pcs": ["pc3", "pc0"]}), 409, "already in room B12")
    refused(admin.post(f"{E}/rooms/A1/pcs", json={"pcs": ["pc3", "pc1"]}), 409, "B12")
    assert (stack.count(Room), stack.count(RoomPC)) == (rooms, pcs)


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"name": "Z", "time_zone": "Mars/Olympus"}, 400, "time_zone"),
    ({"name": "Z"}, 400, "time_zone"),
    ({"name": "Z", "time_zone": "UTC", "idle_vlan": 5000}, 400, "VLAN"),
    ({"name": "Z", "time_zone": "UTC", "default_image": "debian"}, 400, "allowed"),
    ({"name": "Z", "time_zone": "UTC", "pcs": ["no-such-pc"]}, 400, "not a known node"),
    ({"name": "B12", "time_zone": "UTC"}, 409, "already exists"),
    ({"name": "Z", "time_zone": "UTC", "colour": "red"}, 400, "Unknown attribute"),
])
def test_bad_rooms_are_refused(stack: Stack, admin: httpx.Client, world: Any,
                               body: dict[str, Any], status: int, fragment: str) -> None:
    rooms = stack.count(Room)
    refused(admin.post(f"{E}/rooms", json=body), status, fragment)
    assert stack.count(Room) == rooms


def test_bad_image_versions_are_refused(admin: httpx.Client, world: Any) -> None:
    version = {"version": "v2", "source": "http://x/y.img", "checksum": SUM}
    refused(admin.post(f"{E}/images/debian/versions", json={**version, "checksum": "xyz"}),
            400, "sha256")
    refused(admin.post(f"{E}/images/debian/versions",
                       json={**version, "image_type": "partition"}), 400, "kernel")
    refused(admin.post(f"{E}/images/debian/versions", json={**version, "disk_format": "vmdk"}),
            400, "disk_format")
    refused(admin.post(f"{E}/images/debian/versions", json={**version, "version": "v1"}),
            409, "already has")
    assert [v["version"] for v in ok(admin.get(f"{E}/images/debian"))["versions"]] == ["v1"]


def test_weekly_session_across_dst_with_occurrences(stack: Stack, admin: httpx.Client,
                                                    world: Any) -> None:
    created = ok(admin.post(f"{E}/sessions", json={
        "name": "networks", "room": "B12", "image": "debian:v1", "recurrence": "weekly",
        "start": "2027-03-16T14:00", "end": "2027-03-16T16:00", "count": 3,
        "before": "restore-delta", "after": "power-off"}), 201)
    assert [o["start"] for o in created["next_occurrences"]] == [
        "2027-03-16T13:00:00+00:00", "2027-03-23T13:00:00+00:00", "2027-03-30T12:00:00+00:00"]
    occurrences = ok(admin.get(f"{E}/occurrences", params={"session": created["uuid"]}))
    assert [o["planned_start"] for o in occurrences["occurrences"]] == [
        o["start"] for o in created["next_occurrences"]]
    assert {o["state"] for o in occurrences["occurrences"]} == {"planned"}
    listed = ok(admin.get(f"{E}/sessions", params={"room": "B12"}))["sessions"]
    assert created["uuid"] in [s["uuid"] for s in listed]
    ok(admin.delete(f"{E}/sessions/{created['uuid']}"), 204)
    with stack.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Occurrence).join(
            ClassSession).where(ClassSession.uuid == created["uuid"])) == 0


def test_ical_session_with_an_endless_rule_is_expanded_up_to_the_horizon(
        stack: Stack, admin: httpx.Client, world: Any) -> None:
    text = ics(*vevent("lab", "20270105T090000", "20270105T110000", "RRULE:FREQ=WEEKLY"))
    created = ok(admin.post(f"{E}/sessions", json={"room": "B12", "image": "debian:v1",
                                                   "recurrence": "ical", "ical": text}), 201)
    assert created["next_occurrences"][0]["start"] == "2027-01-05T08:00:00+00:00"
    rows = ok(admin.get(f"{E}/occurrences", params={"session": created["uuid"]}))
    assert 45 <= len(rows["occurrences"]) <= 53  # a year ahead, not endless
    ok(admin.delete(f"{E}/sessions/{created['uuid']}"), 204)


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"image": "windows:v1"}, 400, "not allowed in room B12"),
    ({"start": "2020-01-07T14:00", "end": "2020-01-07T15:00"}, 400, "past"),
    ({"recurrence": "weekly", "count": None}, 400, "until"),
    ({"start": "2027-05-04T14:00+02:00"}, 400, "wall-clock"),
    ({"end": "2027-05-04T13:00"}, 400, "ends after its start"),
    ({"before": "pray"}, 400, "before"),
    ({"image": "debian:v9"}, 400, "could not be found"),
    ({"start": "2027-05-04T10:30", "end": "2027-05-04T11:30"}, 409, "overlaps"),
    ({"recurrence": "ical", "ical": "BEGIN:VCALENDAR\r\nnonsense"}, 400, "Malformed"),
    ({"recurrence": "ical", "ical": ics(*(line for n in range(400) for line in vevent(
        str(n), "20270601T090000", "20270601T100000")))}, 400, "too large"),
    ({"recurrence": "ical", "ical": ics(*vevent("p", "20200601T090000", "20200601T100000"))},
     400, "past"),
    ({"room": "A1"}, 400, "not allowed"),
    ({"recurrence": "ical", "ical": ics(*vevent("m", "20270601T090000", "20270601T090100",
                                                "RRULE:FREQ=MINUTELY"))}, 400,
     "more often than daily"),
    ({"recurrence": "ical", "ical": ics(*vevent("h", "20270601T090000", "20270601T110000"),
                                        *vevent("i", "20270601T100000", "20270601T120000"))},
     400, "own occurrences overlap"),
])
def test_bad_sessions_are_refused_and_store_nothing(stack: Stack, admin: httpx.Client,
                                                   world: Any, body: dict[str, Any],
                                                   status: int, fragment: str) -> None:
    ok(admin.post(f"{E}/sessions", json={"room": "B12", "image": "debian:v1", "name": "base",
                                         "start": "2027-05-04T10:00",
                                         "end": "2027-05-04T11:00"}), 201)
    before = (stack.count(ClassSession), stack.count(Occurrence))
    base = {"room": "B12", "image": "debian:v1", "start": "2027-05-04T14:00",
            "end": "2027-05-04T15:00", "count": 2}
    values = {**base, **body}
    if values.get("recurrence") != "weekly":
        values.pop("count")
    if values.get("recurrence") == "ical":
        values.pop("start")
        values.pop("end")
    refused(admin.post(f"{E}/sessions", json=values), status, fragment)
    assert (stack.count(ClassSession), stack.count(Occurrence)) == before
    for listed in ok(admin.get(f"{E}/sessions"))["sessions"]:
        ok(admin.delete(f"{E}/sessions/{listed['uuid']}"), 204)


def test_jobs_are_readable_with_their_per_pc_progress(stack: Stack, admin: httpx.Client,
                                                      world: Any) -> None:
    with stack.db.session() as session:
        room = session.scalar(select(Room).where(Room.name == "B12"))
        assert room is not None
        job = Job(room_id=room.id, kind="restore", requested_by="root", state="running")
        job.pcs = [JobPC(node_uuid=world["nodes"][0]["uuid"], step="write", percent=40,
                         bytes_done=400, bytes_total=1000)]
        session.add(job)
    listed = ok(admin.get(f"{E}/jobs", params={"room": "B12"}))["jobs"]
    shown = ok(admin.get(f"{E}/jobs/{listed[0]['uuid']}"))
    assert shown["pcs"][0]["percent"] == 40 and shown["kind"] == "restore"
    with stack.client("bob") as bob:
        assert ok(bob.get(f"{E}/jobs/{shown['uuid']}"))["room"] == "B12"


def test_paging_follows_next_links(admin: httpx.Client, world: Any) -> None:
    page = ok(admin.get(f"{E}/images", params={"limit": 1}))
    assert len(page["images"]) == 1 and page["next"].startswith("http")
    assert "/enclume/v1/images?" in page["next"]
    second = ok(admin.get(page["next"]))
    assert second["images"][0]["name"] != page["images"][0]["name"]


@pytest.mark.parametrize("teacher", ["alice", "bob"])
def test_a_teacher_sees_their_room_only(stack: Stack, admin: httpx.Client, world: Any,
                                        teacher: str) -> None:
    elsewhere = ok(admin.post(f"{E}/sessions", json={
        "room": "A1", "image": "windows:v1", "start": "2027-06-02T10:00",
        "end": "2027-06-02T11:00"}), 201)
    with stack.client(teacher) as client:
        assert ok(client.get(f"{E}/sessions"))["sessions"] == []
        refused(client.delete(f"{E}/sessions/{elsewhere['uuid']}"), 404, "could not be found")
        refused(client.get(f"{E}/occurrences", params={"session": elsewhere["uuid"]}), 404,
                "could not be found")
        assert ok(client.get(f"{E}/occurrences"))["occurrences"] == []
        assert [r["name"] for r in ok(client.get(f"{E}/rooms"))["rooms"]] == ["B12"]
        response = client.get(f"{E}/rooms/B12")
        assert "driver_info" not in ok(response) and "bmc-pw" not in response.text
        refused(client.get(f"{E}/rooms/A1"), 404, "could not be found")
        refused(client.post(f"{E}/sessions", json={
            "room": "A1", "image": "windows:v1", "start": "2027-06-01T10:00",
            "end": "2027-06-01T11:00"}), 404, "Room A1 could not be found")
        refused(client.get(f"{E}/occurrences", params={"room": "A1"}), 404, "A1")
        refused(client.get("/v1/nodes"), 403, "Ironic API")
        refused(client.post(f"{E}/rooms", json={"name": "X", "time_zone": "UTC"}), 403,
                "admin or an operator")
        refused(client.post(f"{E}/rooms/B12/pcs", json={"pcs": ["pc3"]}), 403, "admin")
        # A teacher changes what the room page offers (logins at the PCs, the layout), no more.
        changed = ok(client.patch(f"{E}/rooms/B12", json={"pc_logins": True,
                                                          "login_language": "fr"}))
        assert (changed["pc_logins"], changed["login_language"]) == (True, "fr")
        refused(client.patch(f"{E}/rooms/B12", json={"pc_logins": None, "name": "B13"}), 403,
                "only an admin or an operator may change a room's name")
        refused(client.patch(f"{E}/rooms/A1", json={"pc_logins": True}), 404,
                "could not be found")
        assert ok(client.patch(f"{E}/rooms/B12", json={"pc_logins": None,
                                                       "login_language": None}))[
            "pc_logins"] is None
        created = ok(client.post(f"{E}/sessions", json={
            "room": "B12", "image": "debian:v1", "start": "2027-06-01T10:00",
            "end": "2027-06-01T11:00"}), 201)
        assert created["created_by"] == teacher
        ok(client.delete(f"{E}/sessions/{created['uuid']}"), 204)
    ok(admin.get(f"{E}/sessions/{elsewhere['uuid']}"))  # untouched
    ok(admin.delete(f"{E}/sessions/{elsewhere['uuid']}"), 204)


def test_students_and_services_have_no_classroom_resources(stack: Stack, world: Any) -> None:
    with stack.client("sam") as sam:
        refused(sam.get(f"{E}/rooms"), 403, "classroom API")
        refused(sam.get("/v1/nodes"), 403, "Ironic API")
    with stack.client("svc") as svc:
        ok(svc.get("/v1/nodes"))
        refused(svc.get(f"{E}/rooms"), 403, "classroom API")
    with httpx.Client(base_url=stack.url) as anonymous:
        assert anonymous.get(f"{E}/rooms").status_code == 401
        assert anonymous.get("/v1/nodes").status_code == 401


def test_concurrent_overlapping_sessions_one_wins(stack: Stack, world: Any) -> None:
    body = {"room": "B12", "image": "debian:v1", "start": "2027-09-07T10:00",
            "end": "2027-09-07T12:00"}
    clients = [stack.client("root") for _ in range(6)]
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            codes = sorted(pool.map(lambda c: c.post(f"{E}/sessions", json=body).status_code,
                                    clients))
    finally:
        for client in clients:
            client.close()
    assert codes == [201, 409, 409, 409, 409, 409]
    with stack.client("root") as admin:
        for listed in ok(admin.get(f"{E}/sessions"))["sessions"]:
            ok(admin.delete(f"{E}/sessions/{listed['uuid']}"), 204)


def test_an_image_used_by_a_session_cannot_be_deleted(admin: httpx.Client, world: Any) -> None:
    created = ok(admin.post(f"{E}/sessions", json={
        "room": "B12", "image": "debian:v1", "start": "2027-10-05T10:00",
        "end": "2027-10-05T11:00"}), 201)
    refused(admin.delete(f"{E}/images/debian/versions/v1"), 409, "used by sessions")
    refused(admin.delete(f"{E}/images/debian"), 409, "used by sessions")
    assert ok(admin.get(f"{E}/images/debian"))["versions"][0]["version"] == "v1"
    ok(admin.delete(f"{E}/sessions/{created['uuid']}"), 204)


def test_images_are_renamed_and_described_by_staff_only(stack: Stack, admin: httpx.Client,
                                                        world: Any) -> None:
    ok(admin.post(f"{E}/images", json={"name": "scratch"}), 201)
    changed = ok(admin.patch(f"{E}/images/scratch", json={"name": "scratch2",
                                                          "description": "for tests"}))
    assert (changed["name"], changed["description"]) == ("scratch2", "for tests")
    refused(admin.patch(f"{E}/images/scratch2", json={"name": "debian"}), 409, "already exists")
    refused(admin.patch(f"{E}/images/scratch2", json={"versions": []}), 400, "Unknown")
    with stack.client("alice") as alice:
        # A teacher reads the images allowed in their rooms only (#17): B12 allows debian.
        assert [i["name"] for i in ok(alice.get(f"{E}/images"))["images"]] == ["debian"]
        refused(alice.get(f"{E}/images/scratch2"), 404, "could not be found")
        assert ok(alice.get(f"{E}/images/debian"))["name"] == "debian"
        refused(alice.patch(f"{E}/images/scratch2", json={"description": "mine"}), 403,
                "admin or an operator")
        refused(alice.delete(f"{E}/images/scratch2"), 403, "admin or an operator")
    ok(admin.delete(f"{E}/images/scratch2"), 204)
    refused(admin.get(f"{E}/images/scratch2"), 404, "could not be found")


def test_a_room_with_sessions_keeps_its_time_zone(admin: httpx.Client, world: Any) -> None:
    created = ok(admin.post(f"{E}/sessions", json={
        "room": "B12", "image": "debian:v1", "start": "2027-11-02T10:00",
        "end": "2027-11-02T11:00"}), 201)
    refused(admin.patch(f"{E}/rooms/B12", json={"time_zone": "Asia/Tokyo"}), 409,
            "has sessions")
    changed = ok(admin.patch(f"{E}/rooms/B12", json={"description": "ground floor",
                                                     "time_zone": "Europe/Paris"}))
    assert (changed["time_zone"], changed["description"]) == ("Europe/Paris", "ground floor")
    ok(admin.delete(f"{E}/sessions/{created['uuid']}"), 204)
