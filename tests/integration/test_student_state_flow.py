"""Students' states end to end (issue #20): a session's end saves each logged-in student's work
(the real agent captures its file-backed disk, only the blocks the store lacks are sent, the
boot service records the state), then restores or powers the PC off; a resume on another PC
restores the version with the state on top, byte-identical; dedup, quota, retention, the
refusals, a PC lost during the capture, the store full.

All real but the login itself: ``enclume-aio`` (API, conductor, job advancer) on SQLite, the boot
service's HTTP app with the image store, machines running the real agent behind emulated IPMI
BMCs. Who is logged in at a PC is written as ``pc_logins.record_login`` leaves it (the login
prompt's flow is tested with ``slapd`` in tests/integration/test_ldap_identity.py).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.boot.http import create_boot_app
from services.common.classroom_models import ClassSession, ImageVersion, Job, Occurrence, Room
from services.common.config import Settings
from services.common.db import Database
from services.common.models import Node
from services.conductor.state_retention import remove_expired_states
from services.images.store import ImageStore
from tests.integration.test_deploy_restore_blocks import add_version, ok
from tests.support.aio import running_aio
from tests.support.asgi import bound_socket, serving, url_of
from tests.support.deploy_lab import (
    HEADERS,
    DeployLab,
    Machine,
    MiB,
    bootable,
    disk_head,
    require_agent_python,
    write_boot_files,
)
from tests.support.disk_images import make_os_image
from tests.support.peers_fixtures import IpmiPeers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

E = "/enclume/v1"
IMAGE_SIZE = 32 * MiB  # 8 blocks of 4 MiB
BLOCK = 4 * MiB
QUOTA_BYTES = 5 * BLOCK  # each student's states together
JOB_TIMEOUT_S = 90.0


@dataclass
class StateLab:
    lab: DeployLab
    store: ImageStore
    image: Path
    version: str  # lab:v1
    other_version: str  # lab:v2
    settings: Settings


@pytest.fixture(scope="module")
def state_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StateLab]:
    require_agent_python()
    base = tmp_path_factory.mktemp("student-states")
    images = write_boot_files(base / "boot-files")
    image = base / "boot-files" / "lab.img"
    make_os_image(image, IMAGE_SIZE)
    other = base / "boot-files" / "lab2.img"
    other.write_bytes(image.read_bytes()[:-BLOCK] + b"v2" * (BLOCK // 2))
    store_dir = base / "image-store"
    boot_socket = bound_socket()
    secret = "student-states-image-token-secret"
    env = {"ENCLUME_BOOT_PUBLIC_URL": url_of(boot_socket), "ENCLUME_IMAGE_TOKEN_SECRET": secret,
           "ENCLUME_IMAGE_STORE_DIR": str(store_dir), "ENCLUME_CLASSROOM_INTERVAL_S": "0.3",
           "ENCLUME_POWER_POLL_INTERVAL_S": "0.1", "ENCLUME_AGENT_HEARTBEAT_TIMEOUT_S": "3"}
    data_dir = base / "aio"
    settings = Settings(
        process={"data_dir": base},
        boot={"files_dir": base / "boot-files", "public_url": url_of(boot_socket)},
        images={"cache_dir": base / "image-cache", "store_dir": store_dir,
                "token_secret": secret},
        student_states={"max_bytes": QUOTA_BYTES, "retention_days": 30})
    with running_aio(data_dir, env=env) as aio:
        db = Database(f"sqlite:///{data_dir / 'enclume.sqlite'}")
        with serving(create_boot_app(settings, db), boot_socket), \
                httpx.Client(base_url=aio.url, headers=HEADERS, timeout=30) as api:
            boot_url = url_of(boot_socket)
            store = ImageStore(store_dir, 1 << 40)
            version = add_version(api, store, "lab", image, boot_url)
            v2 = ok(api.post(f"{E}/images/lab/versions", json={
                "version": "v2", "source": f"{boot_url}/files/{other.name}",
                "checksum": hashlib.sha256(other.read_bytes()).hexdigest()}), 201)["uuid"]
            store.ingest_file(v2, other, hashlib.sha256(other.read_bytes()).hexdigest())
            yield StateLab(DeployLab(api, boot_url, db, images), store, image, version, v2,
                           settings)


@pytest.fixture
def lab(state_lab: StateLab, ipmi_fleet: IpmiPeers) -> Iterator[StateLab]:
    try:
        yield state_lab
    finally:
        state_lab.lab.close_machines()


# -- helpers ---------------------------------------------------------------------------------


def room_of(lab: StateLab, name: str, machines: list[Machine]) -> None:
    ok(lab.lab.api.post(f"{E}/rooms", json={
        "name": name, "time_zone": "UTC", "allowed_images": ["lab"],
        "pcs": [m.uuid for m in machines]}), 201)


def job(lab: StateLab, room: str, machines: list[Machine], action: str,
        **extra: Any) -> list[dict[str, Any]]:
    body = {"action": action, "pcs": [m.uuid for m in machines], **extra}
    if action.startswith("restore"):
        body["image"] = "lab:v1"
    started = ok(lab.lab.api.post(f"{E}/rooms/{room}/actions", json=body), 202)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        found = ok(lab.lab.api.get(f"{E}/jobs/{started['uuid']}"))
        if found["state"] in ("done", "failed", "failed-partly"):
            order = [m.uuid for m in machines]
            return sorted(found["pcs"], key=lambda pc: order.index(pc["node_uuid"]))
        time.sleep(0.2)
    logs = "\n".join(m.hardware.logs() for m in machines)
    raise AssertionError(f"job still {found['state']}: {found['pcs']}\n{logs}")


def log_in(lab: StateLab, machine: Machine, user: str, state: str | None = None,
           version: str | None = None) -> None:
    """What pc_logins.record_login leaves once the user's choice is accepted."""
    with lab.lab.db.session() as session:
        node = session.query(Node).filter_by(uuid=machine.uuid).one()
        node.driver_internal_info = {**node.driver_internal_info, "pc_login": {
            "user": user, "action": "resume" if state else "fresh", "state": state,
            "image_version": version or lab.version,
            "at": datetime.now(UTC).isoformat()}}


def login_of(lab: StateLab, machine: Machine) -> Any:
    return lab.lab.stored_internal_info(machine.uuid).get("pc_login")


def resume(lab: StateLab, machine: Machine, user: str, state: str) -> None:
    """``user`` logs in at the PC and resumes ``state``: the deploy pcprompt's flow runs."""
    log_in(lab, machine, user, state)
    lab.lab.set_image(machine, image_source=f"{lab.lab.boot_url}/files/{lab.image.name}",
                      image_version=lab.version, student_state=state, image_restore="delta")
    lab.lab.provision(machine, "rebuild")
    assert lab.lab.settled(machine, "active")["last_error"] is None


def work(machine: Machine, blocks: dict[int, bytes]) -> None:
    """A student's changes: ``blocks[i]`` written inside block i of the image."""
    with machine.disk.open("r+b") as disk:
        for index, data in blocks.items():
            disk.seek(index * BLOCK + 12345)
            disk.write(data)


def states_of(lab: StateLab, owner: str) -> list[dict[str, Any]]:
    listed = ok(lab.lab.api.get(f"{E}/student-states", params={"owner": owner}))
    return list(listed["student_states"])


def restored(lab: StateLab, machine: Machine) -> bool:
    return disk_head(machine, IMAGE_SIZE) == lab.image.read_bytes()


def pc_in_room(lab: StateLab, ipmi_fleet: IpmiPeers, tmp_path: Path, count: int,
               room: str) -> list[Machine]:
    """PCs of a new room, each restored with lab:v1 by a room job (active)."""
    machines = [lab.lab.add_machine(ipmi_fleet, tmp_path, automated_clean=False)
                for _ in range(count)]
    for machine in machines:
        lab.lab.make_available(machine)
    room_of(lab, room, machines)
    assert all(pc["outcome"] == "succeeded" for pc in job(lab, room, machines, "restore"))
    return machines


# -- the tests ---------------------------------------------------------------------------------


def test_work_saved_at_the_end_resumes_on_another_pc_byte_identical(
        lab: StateLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    first, second = pc_in_room(lab, ipmi_fleet, tmp_path, 2, "S1")
    log_in(lab, first, "alice")
    work(first, {3: b"alice's notes " * 1000, 5: b"an /etc edit"})
    worked = disk_head(first, IMAGE_SIZE)
    blocks_before = lab.store.usage().blocks

    # The teacher's button: a restore of the room saves alice's work first.
    [pc] = job(lab, "S1", [first], "restore")
    assert pc["outcome"] == "succeeded", pc
    [state] = states_of(lab, "alice")
    assert state["size_bytes"] == 2 * BLOCK and state["image_version"] == lab.version
    assert lab.store.usage().blocks == blocks_before + 2  # only the two changed blocks
    assert restored(lab, first) and bootable(first)
    assert login_of(lab, first) is None
    history = ok(lab.lab.api.get(f"/v1/nodes/{first.uuid}/history"))["history"]
    assert any(f"Saved alice's work as state {state['uuid']}" in event["event"]
               for event in history), history

    # alice logs in at the second PC and resumes: the version with her blocks, by delta.
    resume(lab, second, "alice", state["uuid"])
    assert disk_head(second, IMAGE_SIZE) == worked
    written = lab.lab.stored_internal_info(second.uuid)["image_written"]
    assert written["version"] == lab.version and written["differing_blocks"] == 2, written
    assert written["fetched_bytes"] == 2 * BLOCK

    # More work, then the session's end powers the room off: saved (replacing the state she
    # resumed), the PC restored and left off.
    work(second, {6: b"more work " * 100})
    worked = disk_head(second, IMAGE_SIZE)
    [pc] = job(lab, "S1", [second], "power-off")
    assert pc["outcome"] == "succeeded", pc
    [newer] = states_of(lab, "alice")
    assert newer["uuid"] != state["uuid"] and newer["label"] == state["label"]
    assert newer["size_bytes"] == 3 * BLOCK
    assert restored(lab, second) and second.hardware.power_state() == "off"
    assert lab.lab.node(second.uuid)["provision_state"] == "active"
    assert login_of(lab, second) is None

    # Resumed on the first PC: exactly what she left.
    resume(lab, first, "alice", newer["uuid"])
    assert disk_head(first, IMAGE_SIZE) == worked

    # Refused in the flow too: another student's state, a state of another version.
    log_in(lab, first, "mallory")
    lab.lab.set_image(first, image_version=lab.version, student_state=newer["uuid"],
                      image_source=f"{lab.lab.boot_url}/files/{lab.image.name}")
    refused = lab.lab.api.put(f"/v1/nodes/{first.uuid}/states/provision",
                              json={"target": "rebuild"})
    assert refused.status_code == 400 and "could not be found" in refused.text, refused.text
    log_in(lab, first, "alice", newer["uuid"], lab.other_version)
    lab.lab.set_image(first, image_version=lab.other_version, student_state=newer["uuid"],
                      image_source=f"{lab.lab.boot_url}/files/lab2.img")
    refused = lab.lab.api.put(f"/v1/nodes/{first.uuid}/states/provision",
                              json={"target": "rebuild"})
    assert refused.status_code == 400 and "not on the version" in refused.text, refused.text
    assert disk_head(first, IMAGE_SIZE) == worked  # the PC was not touched


def test_two_students_same_change_stored_once_and_quota_and_retention(
        lab: StateLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    bob_pc, carol_pc, dave_pc = pc_in_room(lab, ipmi_fleet, tmp_path, 3, "S2")
    shared = b"the same package, installed by both " * 2000
    log_in(lab, bob_pc, "bob")
    log_in(lab, carol_pc, "carol")
    log_in(lab, dave_pc, "dave")
    work(bob_pc, {4: shared, 7: b"bob's own"})
    work(carol_pc, {4: shared, 7: b"carol's own"})
    work(dave_pc, {1: b"d", 2: b"d", 3: b"d", 4: b"d", 5: b"d", 6: b"d"})  # 24 MiB: over
    dave_worked = disk_head(dave_pc, IMAGE_SIZE)
    lab.store.gc()
    blocks_before = lab.store.usage().blocks

    bob, carol, dave = job(lab, "S2", [bob_pc, carol_pc, dave_pc], "restore")
    assert bob["outcome"] == carol["outcome"] == "succeeded", (bob, carol)
    [bob_state], [carol_state] = states_of(lab, "bob"), states_of(lab, "carol")
    assert bob_state["size_bytes"] == carol_state["size_bytes"] == 2 * BLOCK
    # block 4 of both once, block 7 of each: three new blocks, not four (dave's refused
    # capture left blocks no version uses: the garbage collection takes them)
    lab.store.gc()
    assert lab.store.usage().blocks == blocks_before + 3

    # dave's work is over his quota: not saved, and his PC not restored over it.
    assert dave["outcome"] == "failed", dave
    assert "quota" in dave["error"] and "dave's work was not saved" in dave["error"], dave
    assert "was not restored" in dave["error"], dave
    assert states_of(lab, "dave") == []
    assert disk_head(dave_pc, IMAGE_SIZE) == dave_worked
    assert login_of(lab, dave_pc)["user"] == "dave"
    # The teacher confirms: the restore drops the work.
    [pc] = job(lab, "S2", [dave_pc], "restore", discard_unsaved=True)
    assert pc["outcome"] == "succeeded", pc
    assert restored(lab, dave_pc) and states_of(lab, "dave") == []

    # Retention: carol's state unused for longer than 30 days goes (bob's is pinned); the
    # store forgets it and, at its garbage collection, carol's own block only.
    carol_store = _store_id(lab, carol_state["uuid"])
    ok(lab.lab.api.patch(f"{E}/student-states/{bob_state['uuid']}", json={"pinned": True}))
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=31)
    removed = remove_expired_states(lab.lab.db, lab.settings, later)
    assert removed >= 1  # carol's (and the other tests' students', when they ran first)
    assert states_of(lab, "carol") == [] and len(states_of(lab, "bob")) == 1
    assert carol_store not in lab.store.versions()
    collected = lab.store.gc()
    assert collected.blocks >= 1  # carol's own block 7; the shared block 4 is bob's too
    bob_store = _store_id(lab, bob_state["uuid"])
    assert lab.store.verify(bob_store) == []


def _store_id(lab: StateLab, state_uuid: str) -> str:
    from services.common.state_models import StudentState
    with lab.lab.db.session() as session:
        return session.query(StudentState).filter_by(uuid=state_uuid).one().store_id


def test_a_pc_lost_during_the_capture_keeps_the_previous_state_and_a_full_store_refuses(
        lab: StateLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    [pc] = pc_in_room(lab, ipmi_fleet, tmp_path, 1, "S3")
    log_in(lab, pc, "erin")
    work(pc, {2: b"erin v1"})
    assert job(lab, "S3", [pc], "restore")[0]["outcome"] == "succeeded"
    [previous] = states_of(lab, "erin")
    previous_store = _store_id(lab, previous["uuid"])

    # She resumes and works a lot; the PC loses power in the middle of the capture.
    resume(lab, pc, "erin", previous["uuid"])
    work(pc, {i: os.urandom(BLOCK - 12345) for i in range(1, 6)})
    worked = disk_head(pc, IMAGE_SIZE)
    started = ok(lab.lab.api.post(f"{E}/rooms/S3/actions", json={
        "action": "restore", "image": "lab:v1", "pcs": [pc.uuid]}), 202)
    deadline = time.monotonic() + 60
    while not (plan := lab.lab.stored_internal_info(pc.uuid).get("state_capture")):
        assert time.monotonic() < deadline, pc.hardware.logs()
        time.sleep(0.05)
    manifest = lab.store.layout.tmp / f"capture-{plan['session']}" / "manifest.json"
    while not manifest.exists():  # the agent hashed the disk and sends its blocks now
        assert time.monotonic() < deadline, pc.hardware.logs()
        time.sleep(0.001)
    agent = pc.hardware.agent
    assert agent is not None
    agent.kill()
    agent.wait()
    abort_deploy(lab, pc)
    failed = lab.lab.settled(pc, "deploy failed")
    assert "aborted" in (failed["last_error"] or "").lower(), failed["last_error"]
    [still] = states_of(lab, "erin")
    assert still["uuid"] == previous["uuid"] and lab.store.verify(previous_store) == []
    assert disk_head(pc, IMAGE_SIZE) == worked  # nothing restored over her work
    deadline = time.monotonic() + 30  # the job advancer's next pass sees the failure
    while (outcome := ok(lab.lab.api.get(f"{E}/jobs/{started['uuid']}"))["pcs"][0][
            "outcome"]) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert outcome == "failed"

    # The store is full: she is told, her work stays, the previous state too.
    filler = lab.store.layout.tmp / "filler"
    filler.mkdir(exist_ok=True)
    with (filler / "blob").open("wb") as blob:
        blob.truncate(lab.settings.images.store_max_bytes)
    try:
        [full] = job(lab, "S3", [pc], "restore")
    finally:
        (filler / "blob").unlink()
    assert full["outcome"] == "failed", full
    assert "the image store is full" in full["error"] and "was not restored" in full["error"]
    assert disk_head(pc, IMAGE_SIZE) == worked
    assert [s["uuid"] for s in states_of(lab, "erin")] == [previous["uuid"]]
    assert login_of(lab, pc)["user"] == "erin"

    # Room again: the class's scheduled end (after: restore) saves her work, replacing the
    # previous state, then restores the PC.
    again = scheduled_end(lab, "S3")
    assert again["outcome"] == "succeeded", again
    [saved] = states_of(lab, "erin")
    assert saved["uuid"] != previous["uuid"] and saved["size_bytes"] == 5 * BLOCK
    assert restored(lab, pc)
    assert previous_store not in lab.store.versions()


def scheduled_end(lab: StateLab, room: str) -> dict[str, Any]:
    """A class of ``room`` running until a second from now, ``after: restore``: the timetable
    ends it and starts its after job; that job's (only) PC."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with lab.lab.db.session() as session:
        room_row = session.scalar(select(Room).where(Room.name == room))
        version = session.scalar(select(ImageVersion).where(ImageVersion.uuid == lab.version))
        assert room_row is not None and version is not None
        cls = ClassSession(room_id=room_row.id, image_version_id=version.id, recurrence="once",
                           starts_at=now - timedelta(hours=1), ends_at=now, before="none",
                           after="restore", expanded_until=now + timedelta(days=365))
        session.add(cls)
        session.flush()
        occurrence = Occurrence(session_id=cls.id, planned_start=now - timedelta(hours=1),
                                planned_end=now + timedelta(seconds=1), state="running")
        session.add(occurrence)
        session.flush()
        occurrence_id = occurrence.id
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        with lab.lab.db.session() as session:
            found = session.scalar(select(Job).where(Job.occurrence_id == occurrence_id))
            if found is not None and found.state in ("done", "failed", "failed-partly"):
                [pc] = found.pcs
                return {"outcome": pc.outcome, "error": pc.error}
        time.sleep(0.2)
    raise AssertionError("the class's end started no job that ended")


def abort_deploy(lab: StateLab, machine: Machine) -> None:
    deadline = time.monotonic() + 30
    while True:
        answer = lab.lab.api.put(f"/v1/nodes/{machine.uuid}/states/provision",
                                 json={"target": "abort"})
        if answer.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert answer.status_code == 202, answer.text
