"""Students' saved states and logins at a PC (issue #20), on a real loopback server with a users
file: states are private (404 to anyone else, by id too), teachers of the class may list, pin
and delete but not rename or resume, quotas and retention; a PC's login answers the choices and
refuses a wrong agent token, a wrong password, an unknown user and too many attempts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.classroom.student_states import (
    NewState,
    QuotaExceeded,
    expire_states,
    find_own_state,
    record_state,
)
from services.common.classroom_models import ClassSession, ImageVersion, Occurrence, Room
from services.common.config import Settings
from services.common.config_classroom_sections import StudentStateSettings
from services.common.db import Database, upgrade_schema
from services.common.exceptions import Conflict, NotFound
from services.common.identity import Identity
from services.common.models import Node
from services.common.node_fields import AGENT_TOKEN
from services.common.state_models import StudentState
from services.conductor.state_retention import remove_expired_states
from tests.support.api_stack import served_api
from tests.support.classroom_users import ok, refused, write_users_file

E = "/enclume/v1"
SUM = "a" * 64
PASSWORD = "correct horse"
TOKEN = "agent-token-of-pc0"
# sam and sue study in B12 (the users file's rooms), zoe in A1; bob teaches B12, carl A1.
USERS = {"root": (["admin"], []), "bob": (["teacher"], []), "carl": (["teacher"], ["A1"]),
         "sam": (["student"], ["B12"]), "sue": (["student"], ["B12"]),
         "zoe": (["student"], ["A1"]), "svc": (["service"], [])}


class Stack:
    def __init__(self, url: str, db: Database, settings: Settings) -> None:
        self.url, self.db, self.settings = url, db, settings

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, PASSWORD), timeout=10)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory: Path = tmp_path_factory.mktemp("states")
    users_file = write_users_file(directory, USERS, PASSWORD)
    url = f"sqlite:///{directory / 'db.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(process={"data_dir": directory}, conductor={"hostname": "c1"},
                        auth={"strategy": "users_file", "users_file": users_file},
                        pc_login={"attempts": 3, "window_s": 300, "pc_attempts": 6},
                        student_states={"max_count": 3, "max_bytes": 1000,
                                        "retention_days": 30})
    with served_api(settings, db) as served:
        yield Stack(str(served.client.base_url), db, settings)


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    """Rooms B12 (pc0, pc1; bob) and A1 (pc2; carl by the users file), image debian v1 and v2,
    a class in B12 now on v1; states: sam's two on v1 and one on v2, sue's one on v1."""
    with stack.client("root") as admin:
        nodes = [ok(admin.post("/v1/nodes", json={"driver": "fake-hardware", "name": f"pc{i}"},
                               headers={"X-OpenStack-Ironic-API-Version": "latest"}), 201)
                 for i in range(4)]
        ok(admin.post(f"{E}/images", json={"name": "debian", "versions": [
            {"version": v, "source": f"http://images.example/debian-{v}.img", "checksum": SUM,
             "disk_format": "qcow2", "boot_mode": "uefi"} for v in ("v1", "v2")]}), 201)
        ok(admin.post(f"{E}/rooms", json={"name": "B12", "time_zone": "Europe/Paris",
                                          "allowed_images": ["debian"], "pcs": ["pc0", "pc1"],
                                          "teachers": ["bob"]}), 201)
        ok(admin.post(f"{E}/rooms", json={"name": "A1", "time_zone": "Europe/Paris",
                                          "allowed_images": ["debian"], "pcs": ["pc2"]}), 201)
    now = datetime.now(UTC)
    with stack.db.session() as session:
        for node in session.scalars(select(Node)):
            node.driver_internal_info = {AGENT_TOKEN: f"agent-token-of-{node.name}"}
        v1, v2 = session.scalars(select(ImageVersion).order_by(ImageVersion.id)).all()
        b12 = session.scalar(select(Room).where(Room.name == "B12"))
        a1 = session.scalar(select(Room).where(Room.name == "A1"))
        assert b12 is not None and a1 is not None
        wall = now.replace(tzinfo=None)
        lesson = ClassSession(name="networks", room_id=b12.id, image_version_id=v1.id,
                              recurrence="once", starts_at=wall - timedelta(hours=1),
                              ends_at=wall + timedelta(hours=1), before="none", after="nothing")
        session.add(lesson)
        session.flush()
        session.add(Occurrence(session_id=lesson.id, planned_start=now - timedelta(hours=1),
                               planned_end=now + timedelta(hours=1), state="running"))
        made = {}
        for key, owner, version, room, size in (
                ("sam1", "sam", v1, b12, 100), ("sam2", "sam", v1, b12, 200),
                ("sam-v2", "sam", v2, b12, 50), ("sue1", "sue", v1, b12, 10),
                ("zoe1", "zoe", v1, a1, 10)):
            state = StudentState(owner=owner, image_version_id=version.id, room_id=room.id,
                                 label=key, store_id=f"store-{key}", size_bytes=size,
                                 created_at=now, last_used_at=now - timedelta(
                                     hours=len(made)))
            session.add(state)
            session.flush()
            made[key] = state.uuid
    return {"nodes": {n["name"]: n["uuid"] for n in nodes}, "states": made}


def labels(response: httpx.Response) -> list[str]:
    return sorted(s["label"] for s in ok(response)["student_states"])


def test_a_student_sees_only_their_own_states(stack: Stack, world: dict[str, Any]) -> None:
    with stack.client("sam") as sam, stack.client("sue") as sue:
        assert labels(sam.get(f"{E}/student-states")) == ["sam-v2", "sam1", "sam2"]
        assert labels(sue.get(f"{E}/student-states")) == ["sue1"]
        assert labels(sue.get(f"{E}/student-states", params={"owner": "sam"})) == []
        own = ok(sam.get(f"{E}/student-states/{world['states']['sam1']}"))
        assert own["owner"] == "sam" and own["image"] == "debian" and own["version"] == "v1"
        assert own["room"] == "B12" and own["size_bytes"] == 100 and "store_id" not in own
        # Another student's state does not exist for sue: by id, to read, rename or delete.
        other = f"{E}/student-states/{world['states']['sam1']}"
        refused(sue.get(other), 404, "could not be found")
        refused(sue.patch(other, json={"label": "mine"}), 404, "could not be found")
        refused(sue.delete(other), 404, "could not be found")
        refused(sue.get(f"{E}/student-states/not-a-uuid"), 404, "could not be found")
        # A student cannot pin their own state past the retention.
        refused(sam.patch(other, json={"pinned": True}), 403, "teacher")
        renamed = ok(sam.patch(other, json={"label": "  lab 3, part 1 "}))
        assert renamed["label"] == "lab 3, part 1"
        refused(sam.patch(other, json={"label": ""}), 400, "empty")
        refused(sam.patch(other, json={"label": "a\x07b"}), 400, "control character")
        refused(sam.patch(other, json={"owner": "sue"}), 400, "'label'")
    # Students reach no other classroom resource (as before).
    with stack.client("sam") as sam:
        assert sam.get(f"{E}/rooms").status_code == 403


def test_teachers_of_the_class_list_pin_and_delete_but_do_not_rename(
        stack: Stack, world: dict[str, Any]) -> None:
    sue1 = f"{E}/student-states/{world['states']['sue1']}"
    with stack.client("bob") as bob, stack.client("carl") as carl:
        assert labels(bob.get(f"{E}/student-states", params={"owner": "sue"})) == ["sue1"]
        assert "zoe1" not in labels(bob.get(f"{E}/student-states"))
        assert labels(carl.get(f"{E}/student-states")) == ["zoe1"]
        refused(carl.get(sue1), 404, "could not be found")  # not carl's class
        refused(carl.patch(sue1, json={"pinned": True}), 404, "could not be found")
        refused(bob.patch(sue1, json={"label": "renamed"}), 403, "owner")
        assert ok(bob.patch(sue1, json={"pinned": True}))["pinned"] is True
        refused(bob.patch(sue1, json={"pinned": "yes"}), 400, "true or false")
    with stack.client("root") as root:
        assert len(ok(root.get(f"{E}/student-states"))["student_states"]) >= 5
    with stack.client("svc") as svc:
        assert labels(svc.get(f"{E}/student-states")) == []


def test_a_teacher_deletes_a_students_state(stack: Stack, world: dict[str, Any]) -> None:
    with stack.db.session() as session:
        v1 = session.scalars(select(ImageVersion).order_by(ImageVersion.id)).first()
        b12 = session.scalar(select(Room).where(Room.name == "B12"))
        assert v1 is not None
        doomed = record_state(session, stack.settings.student_states, NewState(
            "sue", v1, b12, "to delete", "store-doomed", 5), datetime.now(UTC)).uuid
    with stack.client("bob") as bob, stack.client("sue") as sue:
        ok(bob.delete(f"{E}/student-states/{doomed}"), 204)
        refused(sue.get(f"{E}/student-states/{doomed}"), 404, "could not be found")


def test_quotas_count_and_bytes_with_a_clear_error(stack: Stack, world: dict[str, Any]) -> None:
    settings = StudentStateSettings(max_count=3, max_bytes=1000)
    now = datetime.now(UTC)
    with stack.db.session() as session:
        v1 = session.scalars(select(ImageVersion).order_by(ImageVersion.id)).first()
        assert v1 is not None
        # sam keeps 3 states: a fourth is refused, nothing stored.
        with pytest.raises(QuotaExceeded, match="already keeps 3 states, the most allowed is 3"):
            record_state(session, settings, NewState("sam", v1, None, "four", "s4", 1), now)
        # Replacing the state it was resumed from counts it out (the old one goes only now).
        sam1 = session.scalar(select(StudentState).where(
            StudentState.uuid == world["states"]["sam1"]))
        assert sam1 is not None
        replaced = record_state(session, settings, NewState("sam", v1, None, "again", "s5", 700),
                                now, replaces=sam1)
        assert session.get(StudentState, sam1.id) is None and replaced.size_bytes == 700
        with pytest.raises(QuotaExceeded, match="over the quota of 1000 bytes"):
            record_state(session, settings, NewState("sue", v1, None, "big", "s6", 991), now)
        session.rollback()


def test_resuming_needs_ones_own_state_of_the_same_version(stack: Stack,
                                                           world: dict[str, Any]) -> None:
    sam = Identity("sam", frozenset({"student"}))
    with stack.db.session() as session:
        v1 = session.scalars(select(ImageVersion).order_by(ImageVersion.id)).first()
        assert v1 is not None
        assert find_own_state(session, sam, world["states"]["sam2"], v1).label == "sam2"
        with pytest.raises(NotFound):
            find_own_state(session, sam, world["states"]["sue1"], v1)
        with pytest.raises(Conflict, match="saved on version v2 of image debian"):
            find_own_state(session, sam, world["states"]["sam-v2"], v1)


def test_retention_removes_old_unpinned_states(stack: Stack, world: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    with stack.db.session() as session:
        v1 = session.scalars(select(ImageVersion).order_by(ImageVersion.id)).first()
        assert v1 is not None
        for label, pinned in (("old", False), ("old pinned", True)):
            session.add(StudentState(owner="zoe", image_version_id=v1.id, label=label,
                                     store_id=f"store-{label}", size_bytes=1, pinned=pinned,
                                     created_at=now - timedelta(days=40),
                                     last_used_at=now - timedelta(days=31)))
    with stack.db.session() as session:
        assert expire_states(session, 31.5, now) == []  # not old enough yet
        session.rollback()
    assert remove_expired_states(stack.db, stack.settings, now) == 1
    with stack.db.session() as session:
        left = set(session.scalars(select(StudentState.label).where(
            StudentState.owner == "zoe")))
    assert left == {"zoe1", "old pinned"}


def login(stack: Stack, world: dict[str, Any], user: str, password: str = PASSWORD,
          pc: str = "pc0", token: str | None = None) -> httpx.Response:
    with stack.anonymous() as client:
        return client.post(f"{E}/pc-logins", json={
            "node": world["nodes"][pc], "user": user, "password": password},
            headers={"X-Agent-Token": token if token is not None else f"agent-token-of-{pc}"})


def test_a_student_logging_in_at_a_pc_gets_fresh_and_their_states_of_the_version(
        stack: Stack, world: dict[str, Any]) -> None:
    answer = ok(login(stack, world, "sue"))
    assert answer["user"] == "sue" and answer["room"] == "B12"
    assert answer["session"]["name"] == "networks" and answer["session"]["version"] == "v1"
    actions = [(c["action"], c.get("state", {}).get("label")) for c in answer["choices"]]
    assert actions[0] == ("fresh", None)
    assert ("resume", "sue1") in actions and ("maintenance", None) not in actions
    assert all(c["state"]["owner"] == "sue" for c in answer["choices"] if "state" in c)
    assert PASSWORD not in json.dumps(answer)


def test_a_teacher_gets_maintenance_and_a_student_of_another_room_is_refused(
        stack: Stack, world: dict[str, Any]) -> None:
    bob = ok(login(stack, world, "bob"))
    assert [c["action"] for c in bob["choices"]] == ["fresh", "maintenance"]
    refused(login(stack, world, "zoe"), 403, "not a student of room B12")
    refused(login(stack, world, "carl"), 403, "may not log in")
    # No class on in A1: a student is told so, its teacher may still do maintenance.
    refused(login(stack, world, "zoe", pc="pc2"), 409, "No class is on in room A1")
    carl = ok(login(stack, world, "carl", pc="pc2"))
    assert carl["session"] is None and [c["action"] for c in carl["choices"]] == ["maintenance"]
    refused(login(stack, world, "sam", pc="pc3"), 409, "in no room")


def test_only_the_pcs_agent_may_ask(stack: Stack, world: dict[str, Any]) -> None:
    refused(login(stack, world, "sam", token=""), 401, "agent token is required")
    refused(login(stack, world, "sam", token="agent-token-of-pc1"), 403, "Invalid agent token")
    with stack.anonymous() as client:
        refused(client.post(f"{E}/pc-logins", json={"node": "nope", "user": "sam",
                                                    "password": PASSWORD},
                            headers={"X-Agent-Token": TOKEN}), 404, "could not be found")
        refused(client.post(f"{E}/pc-logins", json={"node": world["nodes"]["pc0"],
                                                    "user": "sam"},
                            headers={"X-Agent-Token": TOKEN}), 400, "'password'")
        refused(client.post(f"{E}/pc-logins", json={"node": world["nodes"]["pc0"],
                                                    "user": "sam", "password": "x", "pin": 1},
                            headers={"X-Agent-Token": TOKEN}), 400, "Unknown attribute")


def choose(stack: Stack, world: dict[str, Any], ticket: str, action: str,
           state: str | None = None, pc: str = "pc0") -> httpx.Response:
    body = {"node": world["nodes"][pc], "ticket": ticket, "action": action}
    if state is not None:
        body["state"] = state
    with stack.anonymous() as client:
        return client.post(f"{E}/pc-logins/choice", json=body,
                           headers={"X-Agent-Token": f"agent-token-of-{pc}"})


def test_resuming_at_a_pc_needs_ones_own_state_of_the_sessions_version(
        stack: Stack, world: dict[str, Any]) -> None:
    states = world["states"]
    sue = ok(login(stack, world, "sue"))["ticket"]
    before = datetime.now(UTC)
    resumed = ok(choose(stack, world, sue, "resume", states["sue1"]))
    assert resumed["action"] == "resume" and resumed["state"]["label"] == "sue1"
    assert resumed["state"]["store_id"] == "store-sue1"
    assert datetime.fromisoformat(resumed["state"]["last_used_at"]) >= before.replace(
        microsecond=0)
    assert ok(choose(stack, world, sue, "fresh"))["image_version"] == resumed["state"][
        "image_version"]
    # Another student's state does not exist for sue, by id too.
    refused(choose(stack, world, sue, "resume", states["sam2"]), 404, "could not be found")
    refused(choose(stack, world, sue, "resume"), 400, "'state'")
    refused(choose(stack, world, sue, "maintenance"), 403, "may not choose maintenance")
    refused(choose(stack, world, sue, "resume", states["sue1"], pc="pc1"), 403, "another PC")
    refused(choose(stack, world, sue + "x", "fresh"), 401, "log in again")
    refused(choose(stack, world, sue, "format-disk"), 400, "action")
    # A state of another image version than the session's is refused, clearly.
    sam = ok(login(stack, world, "sam"))["ticket"]
    refused(choose(stack, world, sam, "resume", states["sam-v2"]), 409,
            "saved on version v2 of image debian")
    bob = ok(login(stack, world, "bob"))["ticket"]
    assert ok(choose(stack, world, bob, "maintenance"))["action"] == "maintenance"
    refused(choose(stack, world, bob, "resume", states["sue1"]), 404, "could not be found")


def test_wrong_passwords_and_unknown_users_are_limited_per_user_and_per_pc(
        stack: Stack, world: dict[str, Any]) -> None:
    secret = "guessed-password"
    for _ in range(3):
        wrong = login(stack, world, "sam", secret, pc="pc1")
        refused(wrong, 401, "Wrong user name or password")
        assert secret not in wrong.text
    # Locked out at any PC, even with the right password, until the window has passed.
    locked = login(stack, world, "sam", pc="pc0")
    refused(locked, 429, "Too many failed attempts")
    assert locked.headers["retry-after"] == "300"
    refused(login(stack, world, "nobody", secret, pc="pc1"), 401, "Wrong user name")
    refused(login(stack, world, "nobody2", secret, pc="pc1"), 401, "Wrong user name")
    refused(login(stack, world, "nobody3", secret, pc="pc1"), 401, "Wrong user name")
    # pc1 has now failed 6 times (pc_attempts): everyone is refused there, not at pc0.
    refused(login(stack, world, "sue", pc="pc1"), 429, "Too many failed attempts")
    assert ok(login(stack, world, "sue", pc="pc0"))["user"] == "sue"


def test_save_and_log_out_from_the_os_asks_for_the_rooms_save(stack: Stack,
                                                             world: dict[str, Any]) -> None:
    """The deployed OS's session service (its deploy's token) asks to save its student's work:
    a one-PC power-off job of the room (which saves first); nobody logged in or no room: 409."""
    from services.common import session_service
    from services.common.classroom_models import Job

    tokens = {}
    with stack.db.session() as session:
        for node in session.scalars(select(Node)):
            tokens[node.name] = session_service.issue_token(session, node.id, datetime.now(UTC))
            if node.name in ("pc0", "pc3"):
                node.driver_internal_info = {**node.driver_internal_info, "pc_login": {
                    "user": "sam", "action": "fresh", "state": None, "image_version": "v",
                    "at": "2026-12-05T10:00:00+00:00"}}
    pcs = world["nodes"]
    path = f"{E}/session-service/{{}}/save-and-log-out"
    with stack.anonymous() as os_service:
        answer = os_service.post(path.format(pcs["pc0"]),
                                 headers={"Authorization": f"Bearer {tokens['pc0']}"})
        assert answer.status_code == 202, answer.text
        assert answer.json()["user"] == "sam"
        wrong = os_service.post(path.format(pcs["pc0"]),
                                headers={"Authorization": f"Bearer {tokens['pc1']}"})
        assert wrong.status_code == 401, wrong.text
        nobody = os_service.post(path.format(pcs["pc1"]),
                                 headers={"Authorization": f"Bearer {tokens['pc1']}"})
        assert nobody.status_code == 409 and "no student" in nobody.text, nobody.text
        roomless = os_service.post(path.format(pcs["pc3"]),
                                   headers={"Authorization": f"Bearer {tokens['pc3']}"})
        assert roomless.status_code == 409 and "in no room" in roomless.text, roomless.text
    with stack.db.session() as session:
        job = session.scalar(select(Job).where(Job.uuid == answer.json()["job"]))
        assert job is not None
        assert (job.kind, job.requested_by, [pc.node_uuid for pc in job.pcs]) == (
            "power-off", "sam (save and log out)", [pcs["pc0"]])
