"""Room actions as jobs on a real loopback server and fake hardware: a 40-PC room restored in
one action (through the deploy limit), a PC that fails while the others finish and is then
retried alone, wake and power-off, and a teacher's refusals."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.common.classroom_models import ClassSession, Job, JobPC, Occurrence, Room
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node
from services.conductor.room_jobs import JobAdvancer
from services.drivers.fake import FakeDelay
from tests.support.api_stack import ServedApi, served_api
from tests.support.classroom_users import write_users_file
from tests.support.polling import eventually

E = "/enclume/v1"
SUM = "b" * 64
PASSWORD = "correct horse"
USERS = {"root": (["admin"], []), "alice": (["teacher"], ["B12"]), "bob": (["teacher"], [])}
PCS = 40
DEPLOY_LIMIT = 8


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedApi, Database]]:
    directory: Path = tmp_path_factory.mktemp("roomjobs")
    users_file = write_users_file(directory, USERS, PASSWORD)
    url = f"sqlite:///{directory / 'db.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(
        process={"data_dir": directory},
        conductor={"hostname": "c1", "max_concurrent_deploys": DEPLOY_LIMIT},
        auth={"strategy": "users_file", "users_file": users_file},
        fake={"deploy_delay_s": (0.3, 0.5)},
    )
    with served_api(settings, db) as served:
        yield served, db


def client(served: ServedApi, user: str) -> httpx.Client:
    return httpx.Client(base_url=str(served.client.base_url), auth=(user, PASSWORD),
                        timeout=20, headers={"X-OpenStack-Ironic-API-Version": "latest"})


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


@pytest.fixture(scope="module")
def room(stack: tuple[ServedApi, Database]) -> dict[str, Any]:
    """Room B12 (alice's) of 40 available fake PCs, pc7 with a disk that breaks on deploy."""
    served, _db = stack
    with client(served, "root") as admin:
        uuids = [ok(admin.post("/v1/nodes", json={
            "driver": "fake-hardware", "name": f"b12-pc{i}",
            "driver_info": {"fake_deploy_error": "disk /dev/sda is gone"} if i == 7 else {}}),
            201)["uuid"] for i in range(PCS)]
        # All PCs at once: one after the other, this fixture took most of the module's time.
        for target, reached in (("manage", "manageable"), ("provide", "available")):
            for uuid in uuids:
                ok(admin.put(f"/v1/nodes/{uuid}/states/provision", json={"target": target}),
                   202)
            eventually(lambda reached=reached: {
                n["provision_state"] for n in ok(admin.get(
                    "/v1/nodes", params={"fields": "uuid,provision_state", "limit": 1000}))
                ["nodes"] if n["uuid"] in uuids} == {reached}, 120, f"every PC {reached}")
        ok(admin.post(f"{E}/images", json={"name": "debian", "versions": [
            {"version": "v1", "source": "http://images.example/debian-v1.img", "checksum": SUM},
            {"version": "v2", "source": "http://images.example/debian-v2.img",
             "checksum": SUM}]}), 201)
        ok(admin.post(f"{E}/images", json={"name": "windows", "versions": [
            {"version": "v1", "source": "http://images.example/w.img", "checksum": SUM}]}), 201)
        return ok(admin.post(f"{E}/rooms", json={
            "name": "B12", "time_zone": "Europe/Paris", "allowed_images": ["debian"],
            "default_image": "debian", "pcs": [f"b12-pc{i}" for i in range(PCS)]}), 201)


class HeldImageWrites(FakeDelay):
    """The fake deploy's image write, held until ``released``: on a loaded machine the first
    deploys could end while the pass still starts the others, and the limit would never bite."""

    def __init__(self, delay_range: tuple[float, float]) -> None:
        super().__init__(delay_range)
        self.released = threading.Event()

    def draw(self) -> float:  # what the image write waits (FakeDeploy._write_image)
        assert self.released.wait(120), "the test never released the image writes"
        return super().draw()

    def sleep(self) -> None:  # the fake's other steps are not held
        if seconds := super().draw():
            time.sleep(seconds)


@contextmanager
def image_writes_held(served: ServedApi) -> Iterator[HeldImageWrites]:
    deploy = served.manager.drivers.implementation("deploy", "fake")
    original = deploy.delay  # type: ignore[attr-defined]
    held = HeldImageWrites((original.low, original.high))
    deploy.delay = held  # type: ignore[attr-defined]
    try:
        yield held
    finally:
        held.released.set()
        deploy.delay = original  # type: ignore[attr-defined]


def drive(stack: tuple[ServedApi, Database], job_uuid: str, *, until: tuple[str, ...]
          = ("done", "failed-partly", "failed"), timeout: float = 300.0) -> list[dict[str, Any]]:
    """Run the job advancer (as the room's owning conductor's periodic task does) until the job
    ends; every job document seen on the way."""
    served, db = stack
    advancer = JobAdvancer(db, served.manager.membership, "c1", "", served.manager)
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with client(served, "alice") as alice:
        while time.monotonic() < deadline:
            assert advancer.advance() >= 1
            seen.append(ok(alice.get(f"{E}/jobs/{job_uuid}")))
            if seen[-1]["state"] in until:
                return seen
            time.sleep(0.05)
    raise AssertionError(f"job {job_uuid} did not end: {seen[-1]}")


def test_a_room_is_restored_in_one_action_and_a_failed_pc_retried_alone(
        stack: tuple[ServedApi, Database], room: dict[str, Any]) -> None:
    served, db = stack
    with client(served, "alice") as alice:
        response = alice.post(f"{E}/rooms/B12/actions", json={"action": "restore"})
        job = ok(response, 202)
    assert response.headers["Location"] == job["links"][0]["href"]
    assert job["kind"] == "restore" and job["state"] == "pending"
    assert job["image"] == "debian:v2" and job["requested_by"] == "alice"
    assert len(job["pcs"]) == PCS and {pc["step"] for pc in job["pcs"]} == {"queued"}

    with image_writes_held(served):
        seen = drive(stack, job["uuid"], until=("running",))  # the first pass
    seen += drive(stack, job["uuid"])
    final = seen[-1]
    by_name = {pc["node"]: pc for pc in final["pcs"]}
    assert final["state"] == "failed-partly"
    broken = by_name.pop("b12-pc7")
    assert broken["outcome"] == "failed" and "disk /dev/sda is gone" in broken["error"]
    assert all(pc["outcome"] == "succeeded" and pc["percent"] == 100
               for pc in by_name.values())
    # The deploy limit held: some PCs waited queued while others were deploying.
    assert any(sum(pc["step"] == "queued" for pc in doc["pcs"]) > 0
               and sum(pc["step"] == "deploying" for pc in doc["pcs"]) > 0 for doc in seen)
    with db.session() as session:
        infos = {n.name: n.instance_info for n in session.scalars(select(Node))}
    assert infos["b12-pc3"]["image_source"] == "http://images.example/debian-v2.img"

    # The disk is replaced: the failed PC alone is retried (a rebuild from deploy failed).
    with client(served, "root") as admin:
        uuid = broken["node_uuid"]
        ok(admin.patch(f"/v1/nodes/{uuid}", json=[
            {"op": "remove", "path": "/driver_info/fake_deploy_error"}]))
    with client(served, "alice") as alice:
        refused = alice.post(f"{E}/jobs/{final['uuid']}/pcs/b12-pc3/retry")
        assert refused.status_code == 409, refused.text
        retried = ok(alice.post(f"{E}/jobs/{final['uuid']}/pcs/b12-pc7/retry"), 202)
    assert retried["state"] == "running"
    again = drive(stack, job["uuid"])[-1]
    assert again["state"] == "done"
    assert all(pc["outcome"] == "succeeded" for pc in again["pcs"])
    with db.session() as session:
        # The others were not restored a second time: one deploy each in their history.
        active = session.scalars(select(Node).where(Node.provision_state == "active")).all()
    assert len(active) == PCS


def test_restore_some_pcs_with_a_named_version_rebuilds_them(
        stack: tuple[ServedApi, Database], room: dict[str, Any]) -> None:
    served, db = stack
    with client(served, "alice") as alice:
        job = ok(alice.post(f"{E}/rooms/B12/actions", json={
            "action": "restore", "image": "debian:v1", "pcs": ["b12-pc1", "b12-pc2"]}), 202)
    assert [pc["node"] for pc in job["pcs"]] == ["b12-pc1", "b12-pc2"]
    assert drive(stack, job["uuid"])[-1]["state"] == "done"
    with db.session() as session:
        sources = {n.name: n.instance_info.get("image_source")
                   for n in session.scalars(select(Node))}
    assert sources["b12-pc1"] == sources["b12-pc2"] == "http://images.example/debian-v1.img"
    assert sources["b12-pc3"] == "http://images.example/debian-v2.img"


def test_power_off_and_wake(stack: tuple[ServedApi, Database], room: dict[str, Any]) -> None:
    served, _db = stack
    with client(served, "alice") as alice:
        off = ok(alice.post(f"{E}/rooms/B12/actions",
                            json={"action": "power-off", "pcs": ["b12-pc5"]}), 202)
        assert drive(stack, off["uuid"])[-1]["pcs"][0]["step"] == "power off"
        assert ok(alice.get(f"{E}/rooms/B12"))["pcs"][5]["power_state"] == "power off"
        wake = ok(alice.post(f"{E}/rooms/B12/actions",
                             json={"action": "wake", "pcs": ["b12-pc5"]}), 202)
        last = drive(stack, wake["uuid"])[-1]
    assert last["state"] == "done" and last["pcs"][0]["outcome"] == "succeeded"


def test_refusals(stack: tuple[ServedApi, Database], room: dict[str, Any]) -> None:
    served, db = stack
    with client(served, "bob") as bob:
        for action in ("wake", "log-out"):
            response = bob.post(f"{E}/rooms/B12/actions", json={"action": action})
            assert response.status_code == 404, response.text
    with client(served, "alice") as alice:
        jobs = ok(alice.get(f"{E}/jobs"))["jobs"]
        for body, status, fragment in [
            ({"action": "reboot"}, 400, "action"),
            ({"action": "restore", "image": "windows"}, 400, "not allowed"),
            ({"action": "restore", "pcs": ["nope"]}, 400, "not in room"),
            ({"action": "wake", "image": "debian"}, 400, "no image"),
            ({"action": "wake", "force": "yes"}, 400, "force"),
            ({"action": "wake", "colour": 1}, 400, "colour"),
            ({"action": "restore", "discard_unsaved": "yes"}, 400, "discard_unsaved"),
            ({"action": "wake", "discard_unsaved": True}, 400, "saves nothing"),
            ({"action": "log-out", "image": "debian"}, 400, "no image"),
            ({"action": "log-out", "discard_unsaved": True}, 400, "saves nothing"),
            # Fake PCs without the vlan network interface: none is on the class VLAN.
            ({"action": "log-out"}, 409, "None of the chosen PCs of room B12 is on its "
                                         "class VLAN"),
        ]:
            response = alice.post(f"{E}/rooms/B12/actions", json=body)
            assert response.status_code == status, (body, response.text)
            assert fragment in response.text, (body, response.text)
        # A session in progress: a restore is refused unless forced.
        with db.session() as session:
            room_row = session.scalar(select(Room).where(Room.name == "B12"))
            assert room_row is not None
            version_id = room_row.default_image.versions[0].id  # type: ignore[union-attr]
            now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
            cls = ClassSession(room_id=room_row.id, image_version_id=version_id,
                               recurrence="once", starts_at=now, ends_at=now, before="none",
                               after="nothing")
            session.add(cls)
            session.flush()
            session.add(Occurrence(session_id=cls.id, planned_start=now - timedelta(hours=1),
                                   planned_end=now + timedelta(hours=1)))
        response = alice.post(f"{E}/rooms/B12/actions", json={"action": "restore"})
        assert response.status_code == 409 and "in a session" in response.text
        assert len(ok(alice.get(f"{E}/jobs"))["jobs"]) == len(jobs)  # nothing stored
        forced = ok(alice.post(f"{E}/rooms/B12/actions",
                               json={"action": "restore", "force": True, "pcs": ["b12-pc9"]}),
                    202)
    assert drive(stack, forced["uuid"])[-1]["state"] == "done"
    with client(served, "bob") as bob:
        assert bob.get(f"{E}/jobs/{forced['uuid']}").status_code == 404
        response = bob.post(f"{E}/jobs/{forced['uuid']}/pcs/b12-pc9/retry")
        assert response.status_code == 404


AgentWrote = Callable[..., dict[str, Any]]


def _restore_started(stack: tuple[ServedApi, Database], name: str) -> AgentWrote:
    """A room of one PC (``name``) whose restore the advancer started; what sets the node as
    the agent's write left it (progress kept from a heartbeat, state, ``image_written``) and
    returns the job's PC after one pass."""
    served, db = stack
    advancer = JobAdvancer(db, served.manager.membership, "c1", "", served.manager)
    with client(served, "root") as admin:
        node = ok(admin.post("/v1/nodes", json={"driver": "fake-hardware", "name": f"{name}-pc0"}),
                  201)
        ok(admin.post(f"{E}/rooms", json={"name": name, "time_zone": "UTC",
                                          "allowed_images": ["debian"], "pcs": [f"{name}-pc0"]}),
           201)
        job = ok(admin.post(f"{E}/rooms/{name}/actions",
                            json={"action": "restore", "image": "debian:v1"}), 202)

    def agent_wrote(done: int | None, state: str = "wait call-back",
                    written: dict[str, Any] | None = None) -> dict[str, Any]:
        with db.session() as session:
            row = session.scalar(select(Node).where(Node.uuid == node["uuid"]))
            assert row is not None
            row.provision_state = state
            info = dict(row.driver_internal_info or {})
            info.pop("agent_command", None)
            if done is not None:
                info["agent_command"] = {"id": "c1", "name": "standby.write_image",
                                         "progress": {"done_bytes": done,
                                                      "total_bytes": 4 << 30}}
            if written is not None:
                info["image_written"] = written
            row.driver_internal_info = info
            job_pc = session.scalar(select(JobPC).where(JobPC.node_uuid == node["uuid"]))
            assert job_pc is not None
            job_pc.step = "deploying"  # as the advancer leaves a PC it started
        job_id = session_job_id(db, job["uuid"])
        advancer.advance_job(job_id)
        with client(served, "root") as admin:
            return ok(admin.get(f"{E}/jobs/{job['uuid']}"))["pcs"][0]

    return agent_wrote


def test_progress_of_the_image_write_reaches_the_job(
        stack: tuple[ServedApi, Database], room: dict[str, Any]) -> None:
    """What the conductor keeps of the agent's write_image command on each heartbeat
    (driver_internal_info["agent_command"]["progress"]) becomes the PC's bytes and percent."""
    agent_wrote = _restore_started(stack, "C3")
    first = agent_wrote(1 << 30)
    assert (first["bytes_done"], first["bytes_total"], first["percent"]) == (1 << 30, 4 << 30,
                                                                              25)
    assert first["step"] == "wait call-back" and first["outcome"] is None
    later = agent_wrote(3 << 30)
    assert (later["bytes_done"], later["percent"]) == (3 << 30, 75)
    done = agent_wrote(None, state="active")
    assert done["outcome"] == "succeeded" and done["percent"] == 100
    # it ended whole, though the last heartbeat saw 3 of the 4 GiB
    assert (done["bytes_done"], done["bytes_total"]) == (4 << 30, 4 << 30)


def test_a_restore_no_heartbeat_saw_ends_with_the_image_s_bytes(
        stack: tuple[ServedApi, Database], room: dict[str, Any]) -> None:
    """A block restore shorter than a heartbeat: no progress was kept for it, and once the PC
    is active its bytes are the image's, not 0 of nothing."""
    agent_wrote = _restore_started(stack, "C4")
    done = agent_wrote(None, state="active", written={
        "method": "restore_blocks", "mode": "delta", "image_size": 16 << 20,
        "fetched_bytes": 4 << 20})
    assert done["outcome"] == "succeeded" and done["percent"] == 100
    assert (done["bytes_done"], done["bytes_total"]) == (16 << 20, 16 << 20)
    assert (done["restore_mode"], done["fetched_bytes"]) == ("delta", 4 << 20)


def session_job_id(db: Database, job_uuid: str) -> int:
    with db.session() as session:
        job_id = session.scalar(select(Job.id).where(Job.uuid == job_uuid))
        assert job_id is not None
        return int(job_id)


def read_events(lines: Iterator[str], wanted: Any, timeout: float = 20.0
                ) -> list[tuple[str, dict[str, Any]]]:
    """Server-sent events from a stream's ``lines`` until ``wanted(events)`` holds."""
    events: list[tuple[str, dict[str, Any]]] = []
    name, deadline = None, time.monotonic() + timeout
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name:
            events.append((name, json.loads(line.removeprefix("data: "))))
            if wanted(events):
                return events
        assert time.monotonic() < deadline, f"no such event in {events}"
    raise AssertionError(f"the stream ended: {events}")


def test_the_event_stream_shows_a_teachers_jobs_and_pcs_change(
        stack: tuple[ServedApi, Database], room: dict[str, Any]) -> None:
    served, _db = stack
    with client(served, "bob") as bob:
        assert bob.get(f"{E}/events", params={"room": "B12"}).status_code == 404
    with client(served, "alice") as alice, alice.stream(
            "GET", f"{E}/events", params={"room": "B12"}) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        with client(served, "root") as admin:
            job = ok(admin.post(f"{E}/rooms/B12/actions",
                                json={"action": "power-off", "pcs": ["b12-pc11"]}), 202)
            ok(admin.post(f"{E}/rooms/C3/actions", json={"action": "wake"}), 202)
        created = read_events(lines, lambda evs: any(
            n == "job" and d["uuid"] == job["uuid"] for n, d in evs))
        assert all(d["room"] == "B12" for _, d in created)  # another room's job is not shown
        drive(stack, job["uuid"])
        ended = read_events(lines, lambda evs: any(
            n == "pc" and d["job"] == job["uuid"] and d["outcome"] == "succeeded"
            for n, d in evs))
        pc = next(d for n, d in ended if n == "pc" and d["outcome"] == "succeeded")
        assert (pc["node"], pc["step"]) == ("b12-pc11", "power off")


def test_two_advancers_of_one_room_start_each_pc_once(
        stack: tuple[ServedApi, Database], room: dict[str, Any]) -> None:
    """During a ring change two conductors may both advance a room's jobs: each PC is taken by
    one of them (queued → starting with one conditional UPDATE) and written once."""
    served, db = stack
    names = [f"b12-pc{i}" for i in range(20, 28)]

    def writes() -> dict[str, int]:
        with db.session() as session:
            return {n.name: n.driver_internal_info.get("fake_deploys", 0)
                    for n in session.scalars(select(Node).where(Node.name.in_(names)))}

    before = writes()
    with client(served, "alice") as alice:
        job = ok(alice.post(f"{E}/rooms/B12/actions",
                            json={"action": "restore", "pcs": names, "force": True}), 202)
    advancers = [JobAdvancer(db, served.manager.membership, host, "", served.manager)
                 for host in ("c1", "c1-too")]
    for advancer in advancers:
        advancer.owns = lambda _uuid: True  # type: ignore[method-assign]
    job_id = session_job_id(db, job["uuid"])
    barrier = threading.Barrier(len(advancers))

    def race(advancer: JobAdvancer) -> None:
        barrier.wait()
        advancer.advance_job(job_id)

    threads = [threading.Thread(target=race, args=(a,)) for a in advancers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = drive(stack, job["uuid"])[-1]
    assert final["state"] == "done", final
    assert {n: writes()[n] - before[n] for n in names} == dict.fromkeys(names, 1)


def test_a_restore_asks_for_delta_where_the_pc_last_had_the_same_image(
        stack: tuple[ServedApi, Database], room: dict[str, Any]) -> None:
    served, db = stack
    with client(served, "root") as admin:
        versions = {f"{name}:{v['version']}": v["uuid"] for name in ("debian", "windows")
                    for v in ok(admin.get(f"{E}/images/{name}"))["versions"]}
    had = {"b12-pc0": None, "b12-pc1": versions["debian:v1"], "b12-pc2": versions["windows:v1"]}
    with db.session() as session:
        for name, version in had.items():
            row = session.scalar(select(Node).where(Node.name == name))
            assert row is not None
            info = dict(row.driver_internal_info or {})
            info.pop("image_written", None)
            if version is not None:
                info["image_written"] = {"version": version, "method": "restore_blocks"}
            row.driver_internal_info = info

    def restore(action: str) -> dict[str, dict[str, Any]]:
        with client(served, "alice") as alice:
            job = ok(alice.post(f"{E}/rooms/B12/actions", json={
                "action": action, "image": "debian:v2", "pcs": list(had), "force": True}),
                202)
        assert job["kind"] == action
        final = drive(stack, job["uuid"])[-1]
        assert final["state"] == "done", final
        with client(served, "root") as admin:
            infos = {name: ok(admin.get(f"/v1/nodes/{name}"))["instance_info"] for name in had}
        for pc in final["pcs"]:
            assert infos[pc["node"]]["image_restore"] == pc["restore_mode"]
            assert infos[pc["node"]]["image_version"] == versions["debian:v2"]
        return {pc["node"]: pc for pc in final["pcs"]}

    # Another version of the same image counts (delta compares blocks); another image not.
    modes = {name: pc["restore_mode"] for name, pc in restore("restore").items()}
    assert modes == {"b12-pc0": "full", "b12-pc1": "delta", "b12-pc2": "full"}
    forced = {name: pc["restore_mode"] for name, pc in restore("restore-delta").items()}
    assert forced == {"b12-pc0": "delta", "b12-pc1": "delta", "b12-pc2": "delta"}


def test_a_job_whose_every_pc_failed_is_failed(
        stack: tuple[ServedApi, Database], room: dict[str, Any]) -> None:
    """Every PC failed: ``failed``; some failed and some succeeded: ``failed-partly``."""
    served, _db = stack
    broken = ["b12-pc30", "b12-pc31"]
    with client(served, "root") as admin:
        for name in broken:
            ok(admin.patch(f"/v1/nodes/{name}", json=[
                {"op": "add", "path": "/driver_info/fake_deploy_error",
                 "value": "the disk does not answer"}]))
    with client(served, "alice") as alice:
        every = ok(alice.post(f"{E}/rooms/B12/actions", json={
            "action": "restore", "pcs": broken, "force": True}), 202)
        final = drive(stack, every["uuid"])[-1]
        assert final["state"] == "failed", final
        assert [pc["outcome"] for pc in final["pcs"]] == ["failed", "failed"]
        assert final["finished_at"] is not None
        some = ok(alice.post(f"{E}/rooms/B12/actions", json={
            "action": "restore", "pcs": [*broken, "b12-pc32"], "force": True}), 202)
        assert drive(stack, some["uuid"])[-1]["state"] == "failed-partly"
    with client(served, "root") as admin:
        for name in broken:
            ok(admin.patch(f"/v1/nodes/{name}", json=[
                {"op": "remove", "path": "/driver_info/fake_deploy_error"}]))
    with client(served, "alice") as alice:
        # A PC retried later does not move the job's first end (its restore duration).
        ok(alice.post(f"{E}/jobs/{every['uuid']}/pcs/b12-pc30/retry"), 202)
        again = drive(stack, every["uuid"])[-1]
    assert again["state"] == "failed-partly"
    assert again["finished_at"] == final["finished_at"]
