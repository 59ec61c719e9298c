"""The conductor's login step and the class VLAN (#20), all real but the BMC: the API and an
in-process conductor served over TLS with a test CA, the boot service's HTTP app serving the
image store (the class's version and sam's state) and the API's CA, the real agent (Debian's
python3) on a file-backed disk with its login console on a pty, the vlan network interface
moving the PC's port on a real vde_switch.

A deploy of a room's PC (instance_info names the class's version, as a room's restore sets it)
waits at the prompt with the port on the room's idle VLAN; sam logs in
and starts fresh: the class's version is restored and the port moves to the class VLAN; a
power-off clears the login and puts the port back on the idle VLAN. A rebuild (the next class)
clears the login again; sam resumes his state: the version with his blocks on top, restored by
delta, the disk byte-identical to the state; tina's maintenance writes nothing. A PC powered off
after a resume asks again at its next deploy (the state resumed before is not asked for). The
teacher's power-off (a room job, its advancer run by the test) saves sam's work, restores the
version and leaves the PC off with its port on the idle VLAN.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.boot.http import create_boot_app
from services.classroom.image_versions import instance_info
from services.common.classroom_models import ImageVersion, Room
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node, NodeHistory
from services.common.state_models import StudentState
from services.conductor.room_jobs import JobAdvancer
from services.images.manifest import BLOCK_SIZE
from services.images.store import ImageStore
from tests.lab.harness import Lab, VdeSwitch
from tests.support.agent_machine import RAMDISK_PYTHON, REPO
from tests.support.api_stack import TlsFiles, served_api
from tests.support.asgi import bound_socket, serving, url_of
from tests.support.classroom_users import write_users_file
from tests.support.login_console import PtyScreen
from tests.support.pc_login_room import pc_in_a_class
from tests.support.polling import eventually
from tests.support.throwaway_ca import create_ca, issue_server_certificate

pytestmark = [pytest.mark.integration]

PASSWORD = "class password"
IDLE, CLASS = 100, 101
IMAGE_BYTES = 2 * BLOCK_SIZE  # the class's version: two blocks of the image store
STATE_CHANGE = (BLOCK_SIZE + 12345, b"sam's work in lab 3 " * 100)  # sam's state: in block 1
DISK_BYTES = 5 * 1024**3  # sparse: the agent's default disk is 4 GiB or more
TIMEOUT_S = 30.0


@dataclass
class World:
    client: httpx.Client
    db: Database
    node: str
    switch: VdeSwitch
    port: int
    disk: Path
    image: bytes
    console: PtyScreen  # the agent's login console
    agent_log: Path
    state: str
    state_disk: bytes  # the disk sam's state holds (the version's blocks with his on top)
    advance_jobs: Callable[[], None] = lambda: None  # one pass of the room jobs' advancer

    def vlan(self) -> int:
        return self.switch.port_status(self.port)[0]

    def node_row(self) -> dict[str, Any]:
        answer = self.client.get(f"/v1/nodes/{self.node}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def internal(self) -> dict[str, Any]:
        with self.db.session() as session:
            node = session.scalar(select(Node).where(Node.uuid == self.node))
            assert node is not None
            return dict(node.driver_internal_info)

    def history(self) -> list[str]:
        with self.db.session() as session:
            return list(session.scalars(select(NodeHistory.event).join(Node).where(
                Node.uuid == self.node).order_by(NodeHistory.id)))

    def provision(self, target: str) -> None:
        answer = self.client.put(f"/v1/nodes/{self.node}/states/provision",
                                 json={"target": target})
        assert answer.status_code == 202, answer.text

    def settled(self, state: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            current = self.node_row()
            if current["provision_state"] in ("deploy failed", "error"):
                raise AssertionError(f"{current['last_error']}\n{self.agent_log.read_text()}")
            ok = current["provision_state"] == state and current["reservation"] is None
            return current if ok and current["target_provision_state"] is None else None
        return eventually(reached, TIMEOUT_S, f"node to be {state}")

    def disk_head(self) -> bytes:
        with self.disk.open("rb") as disk:
            return disk.read(IMAGE_BYTES)

    def log_in(self, user: str, choice: str) -> str:
        self.console.expect("User name: ", TIMEOUT_S)
        self.console.type(user)
        self.console.expect("Password (not shown): ")
        self.console.type(PASSWORD)
        screen = self.console.expect("Your choice")
        self.console.type(choice)
        return screen


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    top = tmp_path_factory.mktemp("pc-login-deploy")
    image = bytearray(os.urandom(IMAGE_BYTES))
    image[510:512] = b"\x55\xaa"
    (top / "files").mkdir()
    (top / "files" / "class.raw").write_bytes(bytes(image))
    ca = create_ca(top / "ca", "Enclume test API CA")
    server = issue_server_certificate(ca, top / "tls")
    users = write_users_file(top, {"ada": (["admin"], []), "sam": (["student"], ["B12"]),
                                   "tina": (["teacher"], ["B12"])}, PASSWORD)
    url = f"sqlite:///{top / 'db.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    boot_socket = bound_socket()
    with Lab(top / "lab") as lab:
        switch = lab.switch()
        port = switch.create_port()
        (top / "switches.yaml").write_text(
            f"switches:\n  lab:\n    driver: vde\n    socket: {switch.management_socket}\n")
        settings = Settings(
            process={"data_dir": top}, conductor={"hostname": "c1"},
            auth={"strategy": "users_file", "users_file": users},
            pc_login={"at_boot": True},
            boot={"files_dir": top / "files", "public_url": url_of(boot_socket)},
            images={"store_dir": top / "image-store", "cache_dir": top / "image-cache"},
            deploy={"image_download_source": "http", "agent_heartbeat_timeout_s": 3,
                    "agent_api_ca_file": ca.cert_file},
            network={"switches_file": top / "switches.yaml", "switch_batch_window_s": 0})
        with serving(create_boot_app(settings, db), boot_socket), \
                served_api(settings, db, TlsFiles(server.cert_file, server.key_file,
                                                  ca.cert_file)) as served:
            world = _set_up(served.client, db, top, switch, port, bytes(image), settings)
            world.advance_jobs = JobAdvancer(db, served.manager.membership, "c1", "",
                                             served.manager, settings).advance
            ca_url = settings.agent_api_ca_url
            assert ca_url is not None
            agent = _start_agent(world, str(served.client.base_url).rstrip("/"), ca_url, top)
            try:
                yield world
            finally:
                agent.terminate()
                agent.wait(10)
                world.console.close()


def _set_up(client: httpx.Client, db: Database, top: Path, switch: VdeSwitch, port: int,
            image: bytes, settings: Settings) -> World:
    node = pc_in_a_class(client, db, ("ada", PASSWORD), {
        "deploy_interface": "fake", "boot_interface": "fake", "network_interface": "vlan"})
    made = client.post("/v1/ports", auth=("ada", PASSWORD), json={
        "node_uuid": node, "address": "52:54:00:20:00:01", "pxe_enabled": True,
        "local_link_connection": {"switch_info": "lab", "port_id": str(port)}})
    assert made.status_code == 201, made.text
    with db.session() as session:
        room = session.scalar(select(Room))
        version = session.scalar(select(ImageVersion))
        assert room is not None and version is not None
        room.idle_vlan, room.class_vlan = IDLE, CLASS
        version.source = f"{settings.effective_boot_url}/files/class.raw"
        version.disk_format = "raw"
        version.checksum = hashlib.sha256(image).hexdigest()
        pc = session.scalar(select(Node).where(Node.uuid == node))
        assert pc is not None
        pc.instance_info = instance_info(version)  # as a room's restore sets it
        store_id, state_disk, size = _store(settings, top, version.uuid, image)
        now = datetime.now(UTC).replace(tzinfo=None)
        state = StudentState(owner="sam", image_version_id=version.id, room_id=room.id,
                             label="lab 3", store_id=store_id, size_bytes=size,
                             created_at=now, last_used_at=now)
        session.add(state)
        session.flush()
        state_uuid = state.uuid
    auth = ("ada", PASSWORD)
    for target in ("manage", "provide"):
        answer = client.put(f"/v1/nodes/{node}/states/provision", auth=auth,
                            json={"target": target})
        assert answer.status_code == 202, answer.text
        eventually(lambda: client.get(f"/v1/nodes/{node}", auth=auth).json()[
            "target_provision_state"] is None, TIMEOUT_S, target)
    patch = [{"op": "replace", "path": "/deploy_interface", "value": "direct"}]
    assert client.patch(f"/v1/nodes/{node}", auth=auth, json=patch).status_code == 200
    disk = top / "disk.img"
    with disk.open("wb") as handle:
        handle.truncate(DISK_BYTES)
    client.auth = auth
    return World(client, db, node, switch, port, disk, image, PtyScreen(),
                 top / "agent.log", state_uuid, state_disk)


def _store(settings: Settings, top: Path, version: str, image: bytes
           ) -> tuple[str, bytes, int]:
    """The image store as the boot service keeps it: the class's version under its UUID, and
    sam's state (a whole disk's manifest, its store id a UUID as a capture's commit names it,
    the version's blocks shared). Answers the state's store id, its disk and its size (the
    bytes of its blocks that differ from the version's)."""
    store = ImageStore(settings.effective_image_store_dir, settings.images.store_max_bytes)
    store.ingest_file(version, top / "files" / "class.raw", hashlib.sha256(image).hexdigest())
    offset, work = STATE_CHANGE
    state_disk = image[:offset] + work + image[offset + len(work):]
    (top / "state.raw").write_bytes(state_disk)
    store_id = str(uuid.uuid4())
    manifest = store.ingest_file(store_id, top / "state.raw",
                                 hashlib.sha256(state_disk).hexdigest())
    base = store.manifest(version)
    changed = [i for i, block in enumerate(manifest.blocks) if block != base.blocks[i]]
    assert changed == [offset // BLOCK_SIZE]
    return store_id, state_disk, sum(manifest.block_length(i) for i in changed)


def _start_agent(world: World, api_url: str, ca_url: str, top: Path
                 ) -> subprocess.Popen[bytes]:
    """The agent as the ramdisk starts it: the API's CA from a URL of the kernel command line."""
    cmdline = top / "cmdline"
    cmdline.write_text(f"enclume.api_url={api_url} enclume.node={world.node} "
                       f"enclume.api_ca_url={ca_url}\n")
    argv = [RAMDISK_PYTHON, "-m", "agent.main", "--cmdline-file", str(cmdline),
            "--login-console", world.console.slave_path,
            "--mac", "52:54:00:20:00:01", "--port", "0", "--listen-host", "127.0.0.1",
            "--advertise-host", "127.0.0.1", "--heartbeat-interval", "0.3",
            "--lookup-retry", "0.2", "--lldp-interface", "lo", "--staging-dir", str(top),
            "--disk", str(world.disk), "--poweroff-command", "true",
            "--reboot-command", "true", "--lockdown-command", "true",
            "--power-action-delay", "0.1"]
    with world.agent_log.open("wb") as out:
        return subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def test_a_student_logs_in_and_the_port_moves_to_the_class_vlan_until_power_off(
        world: World) -> None:
    world.provision("active")
    screen = world.log_in("sam", "1")
    assert world.vlan() == IDLE  # at the prompt: the idle VLAN
    assert "Start fresh from debian v1" in screen
    node = world.settled("active")
    assert world.vlan() == CLASS
    assert world.disk_head() == world.image
    login = world.internal()["pc_login"]
    assert login["user"] == "sam" and login["action"] == "fresh"
    assert node["instance_info"]["image_restore"] == "delta"
    assert "student_state" not in node["instance_info"]
    assert any("sam logged in at the PC and chose a fresh start" in e for e in world.history())

    answer = world.client.put(f"/v1/nodes/{world.node}/states/power",
                              json={"target": "power off"})
    assert answer.status_code == 202, answer.text
    eventually(lambda: "pc_login" not in world.internal(), TIMEOUT_S, "the login to go")
    assert world.vlan() == IDLE


def test_the_next_class_logs_in_again_resume_and_maintenance(world: World) -> None:
    before = world.disk_head()
    world.provision("rebuild")
    eventually(lambda: world.vlan() == IDLE, TIMEOUT_S, "the idle VLAN")
    world.log_in("sam", "2")  # resume "lab 3"
    node = world.settled("active")
    assert node["instance_info"]["student_state"] == world.state
    assert world.internal()["pc_login"]["state"] == world.state
    assert world.vlan() == CLASS
    assert world.disk_head() == world.state_disk  # the version with sam's blocks on top
    written = world.internal()["image_written"]
    differing = [i for i in range(0, IMAGE_BYTES, BLOCK_SIZE)
                 if before[i:i + BLOCK_SIZE] != world.state_disk[i:i + BLOCK_SIZE]]
    assert written["version"] == node["instance_info"]["image_version"]
    assert written["mode"] == "delta" and written["differing_blocks"] == len(differing) > 0
    assert any(f"with sam's state {world.state}" in e for e in world.history())

    with world.disk.open("r+b") as disk:  # the class changed the disk
        disk.write(b"changed by the class")
    world.provision("rebuild")
    eventually(lambda: "pc_login" not in world.internal(), TIMEOUT_S, "sam's login to go")
    eventually(lambda: world.vlan() == IDLE, TIMEOUT_S, "the idle VLAN")
    screen = world.log_in("tina", "2")
    assert "2) Maintenance" in screen
    node = world.settled("active")
    assert "student_state" not in node["instance_info"]
    with world.disk.open("rb") as disk:
        assert disk.read(20) == b"changed by the class"  # maintenance restores nothing
    assert world.internal()["pc_login"]["action"] == "maintenance"
    assert world.vlan() == CLASS


def test_a_pc_powered_off_after_a_resume_asks_again_and_starts_fresh(world: World) -> None:
    world.provision("rebuild")
    world.log_in("sam", "2")  # resume "lab 3"
    assert world.settled("active")["instance_info"]["student_state"] == world.state
    answer = world.client.put(f"/v1/nodes/{world.node}/states/power",
                              json={"target": "power off"})
    assert answer.status_code == 202, answer.text
    eventually(lambda: "pc_login" not in world.internal(), TIMEOUT_S, "sam's login to go")

    world.provision("rebuild")  # nobody is logged in: the state sam resumed is not asked for
    assert "Resume" in world.log_in("sam", "1")  # a fresh start this time
    node = world.settled("active")
    assert "student_state" not in node["instance_info"]
    assert world.internal()["pc_login"]["action"] == "fresh"
    assert world.disk_head() == world.image


def test_a_saving_power_off_leaves_the_pc_off_on_the_idle_vlan(world: World) -> None:
    """The teacher's power-off of the PC sam works at (as a session's end does) saves sam's
    work, restores the version and leaves the PC off: its port waits on the idle VLAN, not on
    the class VLAN, until the next login."""
    assert world.internal()["pc_login"]["user"] == "sam" and world.vlan() == CLASS
    with world.disk.open("r+b") as disk:
        disk.write(b"sam's unsaved work")
    started = world.client.post("/enclume/v1/rooms/B12/actions",
                                json={"action": "power-off", "pcs": [world.node]})
    assert started.status_code == 202, started.text

    def ended() -> dict[str, Any] | None:
        world.advance_jobs()
        job = world.client.get(f"/enclume/v1/jobs/{started.json()['uuid']}").json()
        return job if job["state"] in ("done", "failed", "failed-partly") else None
    job = eventually(ended, TIMEOUT_S * 2, "the power-off job to end")
    assert job["state"] == "done", job
    assert world.node_row()["power_state"] == "power off"
    assert "pc_login" not in world.internal()
    assert world.vlan() == IDLE
    assert world.disk_head() == world.image  # restored for the next class
    with world.db.session() as session:
        saved = session.scalars(select(StudentState).where(StudentState.owner == "sam")).all()
        assert len(saved) == 2, [s.label for s in saved]  # "lab 3" and this session's work
