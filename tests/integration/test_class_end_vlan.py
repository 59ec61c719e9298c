"""A class's end that neither restores nor powers off (``after: nothing``): the timetable runner
on an injected clock, the room jobs' advancer run by the test, an in-process conductor and the
vlan network interface moving the PCs' ports on real vde_switches.

Room B12's PCs run their OS on its class VLAN (each deployed, fake hardware): sam is logged in
at pc-sam, tina at pc-tina for maintenance, pc-off was powered off (a power-off moves no
port), pc-far is cabled to a second switch that stops answering before the end, pc-idle was
never deployed. At the end the timetable starts one ``log-out`` job of the four deployed PCs;
one pass of the advancer puts pc-sam, pc-tina and pc-off back on the idle VLAN (pc-off stays
off), ends sam's login but keeps his unsaved work recorded for the next restore to save,
clears tina's maintenance login, and fails pc-far alone with the switch's reason (its login
kept: it is still on the class network). pc-idle is not touched. Once the far switch answers
again, the teacher's retry of pc-far moves it too. With no class on, a teacher's log-out
(``enclume room log-out``) takes the PCs named that are on the class VLAN.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.classroom.state_capture import logged_in
from services.cli.enclume import main as cli_main
from services.common.config import Settings
from services.common.db import Database
from services.common.models import Node, NodeHistory, Port, utcnow
from services.conductor.room_jobs import JobAdvancer
from services.conductor.timetable import TimetableRunner
from tests.lab.harness import Lab, VdeSwitch
from tests.support.api_stack import ServedApi, served_sqlite_api
from tests.support.classroom_users import ok
from tests.support.polling import eventually

pytestmark = [pytest.mark.integration]

E = "/enclume/v1"
IDLE, CLASS = 100, 101
PCS = ("pc-sam", "pc-tina", "pc-off", "pc-far", "pc-idle")
TIMEOUT_S = 30.0


@dataclass
class World:
    served: ServedApi
    db: Database
    settings: Settings
    near: VdeSwitch
    far: VdeSwitch
    ports: dict[str, int]  # each PC's switch port (pc-far's on the far switch)
    nodes: dict[str, str]  # name -> UUID

    @property
    def api(self) -> httpx.Client:
        return self.served.client

    def timetable(self) -> TimetableRunner:
        """The conductor's timetable runner, its clock given at each pass by the test."""
        manager = self.served.manager
        return TimetableRunner(self.db, self.settings, manager.membership, manager.host)

    def advance_jobs(self) -> None:
        """One pass of the conductor's room jobs' advancer."""
        manager = self.served.manager
        JobAdvancer(self.db, manager.membership, manager.host, "", manager,
                    self.settings).advance()

    def vlan(self, pc: str) -> int:
        switch = self.far if pc == "pc-far" else self.near
        return switch.port_status(self.ports[pc])[0]

    def internal(self, pc: str) -> dict[str, Any]:
        with self.db.session() as session:
            node = session.scalar(select(Node).where(Node.name == pc))
            assert node is not None
            return dict(node.driver_internal_info)

    def history(self, pc: str) -> list[str]:
        with self.db.session() as session:
            return list(session.scalars(select(NodeHistory.event).join(Node).where(
                Node.name == pc).order_by(NodeHistory.id)))


def settle(api: httpx.Client, pcs: list[str], verb: str, state: str) -> None:
    for pc in pcs:
        ok(api.put(f"/v1/nodes/{pc}/states/provision", json={"target": verb}), 202)

    def reached() -> bool:
        for pc in pcs:
            node = ok(api.get(f"/v1/nodes/{pc}"))
            if node["last_error"]:
                raise AssertionError(f"{pc}: {verb} failed: {node['last_error']}")
            if node["provision_state"] != state or node["reservation"] is not None:
                return False
        return True
    eventually(reached, TIMEOUT_S, f"{', '.join(pcs)} {state}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    top: Path = tmp_path_factory.mktemp("class-end")
    with Lab(top / "lab") as lab:
        near, far = lab.switch("near"), lab.switch("far")
        (top / "switches.yaml").write_text(
            f"switches:\n  near:\n    driver: vde\n    socket: {near.management_socket}\n"
            f"  far:\n    driver: vde\n    socket: {far.management_socket}\n")
        with served_sqlite_api(top, network={"switches_file": top / "switches.yaml",
                                             "switch_batch_window_s": 0.05}) as served:
            ports = {pc: (far if pc == "pc-far" else near).create_port() for pc in PCS}
            nodes = {}
            for index, pc in enumerate(PCS):
                nodes[pc] = ok(served.client.post("/v1/nodes", json={
                    "driver": "fake-hardware", "name": pc, "network_interface": "vlan"}),
                    201)["uuid"]
                ok(served.client.post("/v1/ports", json={
                    "node_uuid": nodes[pc], "address": f"52:54:00:30:00:{index:02x}",
                    "local_link_connection": {"switch_info": "far" if pc == "pc-far"
                                              else "near", "port_id": str(ports[pc])}}), 201)
            ok(served.client.post(f"{E}/images", json={"name": "debian", "versions": [
                {"version": "v1", "source": "http://images.example/d.img",
                 "checksum": "c" * 64}]}), 201)
            ok(served.client.post(f"{E}/rooms", json={
                "name": "B12", "time_zone": "UTC", "idle_vlan": IDLE, "class_vlan": CLASS,
                "allowed_images": ["debian"], "pcs": list(PCS)}), 201)
            settle(served.client, list(PCS), "manage", "manageable")
            settle(served.client, list(PCS), "provide", "available")
            settle(served.client, list(PCS[:4]), "active", "active")
            yield World(served, served.manager.db, served.manager.settings, near, far,
                        ports, nodes)


def log_in(world: World, pc: str, user: str, action: str) -> None:
    """What the API records when a user's choice at the PC's prompt is accepted."""
    with world.db.session() as session:
        node = session.scalar(select(Node).where(Node.name == pc))
        version = world.api.get(f"{E}/images/debian").json()["versions"][0]["uuid"]
        assert node is not None
        node.driver_internal_info = {**node.driver_internal_info, "pc_login": {
            "user": user, "action": action, "state": None, "image_version": version,
            "at": "2027-05-25T10:05:00+00:00"}}


def back_on_the_class_vlan(world: World, pc: str) -> None:
    """As a deploy for the next class leaves a PC of the near switch: its switch port on the
    class VLAN, and the record of it on its port."""
    world.near.set_port_vlan(world.ports[pc], CLASS)
    with world.db.session() as session:
        port = session.scalar(select(Port).join(Node).where(Node.name == pc))
        assert port is not None
        port.internal_info = {**port.internal_info, "access_vlan": CLASS}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_class_that_ends_with_nothing_sends_its_pcs_back_to_the_idle_vlan(
        world: World) -> None:
    assert {pc: world.vlan(pc) for pc in PCS} == {
        "pc-sam": CLASS, "pc-tina": CLASS, "pc-off": CLASS, "pc-far": CLASS, "pc-idle": IDLE}
    log_in(world, "pc-sam", "sam", "fresh")
    log_in(world, "pc-tina", "tina", "maintenance")
    log_in(world, "pc-far", "max", "fresh")
    ok(world.api.put("/v1/nodes/pc-off/states/power", json={"target": "power off"}), 202)
    eventually(lambda: ok(world.api.get("/v1/nodes/pc-off"))["power_state"] == "power off",
               TIMEOUT_S, "pc-off powered off")
    assert world.vlan("pc-off") == CLASS  # a power-off moves no port

    cls = ok(world.api.post(f"{E}/sessions", json={
        "room": "B12", "image": "debian:v1", "start": "2027-05-25T10:00",
        "end": "2027-05-25T12:00", "before": "none", "after": "nothing"}), 201)
    runner = world.timetable()
    assert runner.run(at("2027-05-25T10:00")).claimed == 1
    assert runner.run(at("2027-05-25T10:01")).started == 1
    assert ok(world.api.get(f"{E}/jobs", params={"room": "B12"}))["jobs"] == []
    world.far.stop()  # pc-far's switch no longer answers
    idle_history = world.history("pc-idle")
    assert runner.run(at("2027-05-25T12:00")).ended == 1
    (job,) = ok(world.api.get(f"{E}/jobs", params={"room": "B12"}))["jobs"]
    assert (job["kind"], job["state"]) == ("log-out", "pending")
    (occurrence,) = ok(world.api.get(f"{E}/occurrences",
                                     params={"session": cls["uuid"]}))["occurrences"]
    assert (occurrence["state"], occurrence["reason"]) == ("done", None)
    assert job["occurrence"] == occurrence["uuid"]
    assert [pc["node"] for pc in job["pcs"]] == ["pc-sam", "pc-tina", "pc-off", "pc-far"]

    world.advance_jobs()
    job = ok(world.api.get(f"{E}/jobs/{job['uuid']}"))
    assert job["state"] == "failed-partly", job
    rows = {pc["node"]: (pc["step"], pc["outcome"], pc["error"]) for pc in job["pcs"]}
    far = rows.pop("pc-far")
    assert rows == {pc: ("idle VLAN", "succeeded", None)
                    for pc in ("pc-sam", "pc-tina", "pc-off")}
    assert far[:2] == ("class VLAN", "failed")
    assert far[2].startswith("Leaving the class VLAN, the PC's switch ports could not go back "
                             "to the idle VLAN: "), far

    assert {pc: world.vlan(pc) for pc in ("pc-sam", "pc-tina", "pc-off", "pc-idle")} == {
        "pc-sam": IDLE, "pc-tina": IDLE, "pc-off": IDLE, "pc-idle": IDLE}
    assert ok(world.api.get("/v1/nodes/pc-off"))["power_state"] == "power off"
    assert ok(world.api.get("/v1/nodes/pc-sam"))["provision_state"] == "active"
    sam = world.internal("pc-sam")["pc_login"]
    assert sam["user"] == "sam" and sam["ended_at"].startswith("20")
    # sam's work is still on the disk, unsaved: the PC's next restore saves it first.
    assert logged_in(world.internal("pc-sam")) is not None
    assert "pc_login" not in world.internal("pc-tina")  # maintenance: nothing to save
    max_login = world.internal("pc-far")["pc_login"]
    assert max_login["user"] == "max" and "ended_at" not in max_login
    assert f"Switch ports moved to the provisioning VLAN {IDLE} (the idle VLAN of room B12): " \
           f"near {world.ports['pc-sam']}." in world.history("pc-sam")
    assert any(event.startswith("Leaving the class VLAN, the PC's switch ports could not go")
               for event in world.history("pc-far"))
    assert world.history("pc-idle") == idle_history  # not on the class VLAN: untouched

    # The far switch answers again (its port back as it was): the teacher retries pc-far.
    revived = VdeSwitch(world.far.socket_dir.parent)
    try:
        assert revived.create_port(CLASS) == world.ports["pc-far"]
        ok(world.api.post(f"{E}/jobs/{job['uuid']}/pcs/pc-far/retry"), 202)
        world.advance_jobs()
        job = ok(world.api.get(f"{E}/jobs/{job['uuid']}"))
        assert job["state"] == "done", job
        assert revived.port_status(world.ports["pc-far"])[0] == IDLE
        assert world.internal("pc-far")["pc_login"]["ended_at"].startswith("20")
    finally:
        revived.stop()


def test_a_class_end_noticed_after_its_grace_moves_nothing(world: World) -> None:
    """Ended more than the grace late (no conductor ran the timetable then): the next class
    may have begun, so no log-out job; the occurrence says why."""
    back_on_the_class_vlan(world, "pc-tina")  # someone to log out
    cls = ok(world.api.post(f"{E}/sessions", json={
        "room": "B12", "image": "debian:v1", "start": "2027-06-01T10:00",
        "end": "2027-06-01T12:00", "before": "none", "after": "nothing"}), 201)
    runner = world.timetable()
    jobs_before = len(ok(world.api.get(f"{E}/jobs", params={"room": "B12"}))["jobs"])
    assert runner.run(at("2027-06-01T10:00")).claimed == 1
    assert runner.run(at("2027-06-01T10:01")).started == 1
    grace = world.settings.classroom.occurrence_grace_s
    assert runner.run(at("2027-06-01T12:00") + timedelta(seconds=grace + 1)).ended == 1
    assert len(ok(world.api.get(f"{E}/jobs", params={"room": "B12"}))["jobs"]) == jobs_before
    (occurrence,) = ok(world.api.get(f"{E}/occurrences",
                                     params={"session": cls["uuid"]}))["occurrences"]
    assert occurrence["reason"].startswith(
        "The log-out after the class was skipped: the class ended at 2027-06-01 12:00:00 UTC "
        "and no conductor ended it before "), occurrence


def test_a_pc_restored_since_the_class_ended_is_not_taken_off_its_new_class(
        world: World) -> None:
    """A PC busy at the class's end (409: the job waits for it) and restored for the next
    class before the job's next pass belongs to that class: its ports stay where they are."""
    for pc in ("pc-sam", "pc-tina"):
        back_on_the_class_vlan(world, pc)
    ok(world.api.post(f"{E}/sessions", json={
        "room": "B12", "image": "debian:v1", "start": "2027-06-08T10:00",
        "end": "2027-06-08T12:00", "before": "none", "after": "nothing"}), 201)
    runner = world.timetable()
    assert runner.run(at("2027-06-08T10:00")).claimed == 1
    assert runner.run(at("2027-06-08T10:01")).started == 1
    assert runner.run(at("2027-06-08T12:00")).ended == 1
    (job,) = [job for job in ok(world.api.get(f"{E}/jobs", params={"room": "B12"}))["jobs"]
              if job["state"] == "pending"]
    assert job["kind"] == "log-out", job
    with world.db.session() as session:  # its restore for the next class ended after the job
        node = session.scalar(select(Node).where(Node.name == "pc-sam"))
        assert node is not None
        node.provision_updated_at = utcnow().replace(tzinfo=None) + timedelta(minutes=1)
    world.advance_jobs()
    rows = {pc["node"]: (pc["step"], pc["outcome"]) for pc in
            ok(world.api.get(f"{E}/jobs/{job['uuid']}"))["pcs"]}
    assert rows["pc-sam"] == ("active", "succeeded"), rows
    assert rows["pc-tina"] == ("idle VLAN", "succeeded"), rows
    assert (world.vlan("pc-sam"), world.vlan("pc-tina")) == (CLASS, IDLE)


def test_a_teacher_logs_the_pcs_on_the_class_vlan_out_now(
        world: World, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """No class on: the teacher's ``enclume room log-out`` of pc-sam and pc-idle (the CLI, in
    process, against the served API) is a job of pc-sam alone, the one on the class VLAN; one
    pass of the advancer puts it on the idle VLAN and ends sam's login, his work kept for the
    next restore. pc-idle alone is refused, and nothing is stored; so is pc-sam once moved."""
    back_on_the_class_vlan(world, "pc-sam")
    with world.db.session() as session:  # the previous test's "restore for the next class"
        node = session.scalar(select(Node).where(Node.name == "pc-sam"))
        assert node is not None
        node.provision_updated_at = utcnow().replace(tzinfo=None) - timedelta(minutes=1)
    log_in(world, "pc-sam", "sam", "fresh")
    jobs_before = ok(world.api.get(f"{E}/jobs", params={"room": "B12"}))["jobs"]

    refused = world.api.post(f"{E}/rooms/B12/actions",
                             json={"action": "log-out", "pcs": ["pc-idle"]})
    assert refused.status_code == 409, refused.text
    assert "None of the chosen PCs of room B12 is on its class VLAN" in refused.text
    assert ok(world.api.get(f"{E}/jobs", params={"room": "B12"}))["jobs"] == jobs_before

    monkeypatch.setenv("ENCLUME_URL", str(world.api.base_url))
    monkeypatch.setenv("ENCLUME_CLI_CONFIG", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")
    monkeypatch.setattr(sys, "argv", ["enclume", "room", "log-out", "B12", "--pc", "pc-sam",
                                      "--pc", "pc-idle", "-f", "json"])
    try:
        cli_main.main()
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr()
    job = json.loads(capsys.readouterr().out)
    assert (job["kind"], job["state"], job["occurrence"]) == ("log-out", "pending", None)
    assert [pc["node"] for pc in job["pcs"]] == ["pc-sam"]

    world.advance_jobs()
    job = ok(world.api.get(f"{E}/jobs/{job['uuid']}"))
    assert job["state"] == "done", job
    assert (job["pcs"][0]["step"], job["pcs"][0]["outcome"]) == ("idle VLAN", "succeeded")
    assert world.vlan("pc-sam") == IDLE
    assert world.internal("pc-sam")["pc_login"]["ended_at"].startswith("20")
    assert logged_in(world.internal("pc-sam")) is not None  # saved by the next restore
    # Still active, but no longer on the class VLAN: a second log-out has nothing to take.
    again = world.api.post(f"{E}/rooms/B12/actions",
                           json={"action": "log-out", "pcs": ["pc-sam"]})
    assert again.status_code == 409, again.text


def test_a_pc_left_on_an_older_class_vlan_is_still_logged_out(world: World) -> None:
    """Staff changed the room's class VLAN after pc-sam's deploy: pc-sam is still on the old
    one, so a log-out takes it back to the idle VLAN (only ports all recorded on the room's
    idle VLAN mean that a log-out moved the PC already)."""
    back_on_the_class_vlan(world, "pc-sam")
    ok(world.api.patch(f"{E}/rooms/B12", json={"class_vlan": CLASS + 10}))
    try:
        job = ok(world.api.post(f"{E}/rooms/B12/actions",
                                json={"action": "log-out", "pcs": ["pc-sam"]}), 202)
        assert [pc["node"] for pc in job["pcs"]] == ["pc-sam"]
        world.advance_jobs()
        assert ok(world.api.get(f"{E}/jobs/{job['uuid']}"))["state"] == "done"
        assert world.vlan("pc-sam") == IDLE
    finally:
        ok(world.api.patch(f"{E}/rooms/B12", json={"class_vlan": CLASS}))
