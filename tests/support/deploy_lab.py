"""What the deploy tests share: boot files and images, the boot service's HTTP app on the test's
database, machines with the real agent behind emulated IPMI BMCs, and API helpers.

The API side is whatever the test runs (``enclume-aio``, or a cluster of ``enclume-api`` and
``enclume-conductor`` processes); ``DeployLab`` only needs its URL and the database.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.boot.http import create_boot_app
from services.common.config import Settings
from services.common.db import Database
from services.common.models import Node
from tests.support.agent_machine import RAMDISK_PYTHON, AgentMachine
from tests.support.aio import running_aio
from tests.support.asgi import bound_socket, serving, url_of
from tests.support.peers_fixtures import IpmiPeers

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
MiB = 1024 * 1024
GiB = 1024 * MiB
DISK_BYTES = 5 * GiB  # sparse: local_gb 4 after inspection
IMAGE_BYTES = 6 * MiB
KERNEL, RAMDISK = "deploy.kernel", "deploy.initramfs"
STEP_TIMEOUT_S = 60.0
RESTING = {"available", "active", "manageable", "enroll", "deploy failed", "clean failed",
           "inspect failed", "error"}
_MAC = itertools.count(0x10)


def require_agent_python() -> None:
    if not Path(RAMDISK_PYTHON).exists():
        pytest.fail(f"{RAMDISK_PYTHON} (Debian python3.11) is needed to run the agent")


def write_boot_files(files: Path) -> dict[str, Path]:
    """Deploy kernel and ramdisk (contents do not matter: the machine only fetches them), a raw
    whole-disk image with an MBR boot signature, and the same image as qcow2."""
    files.mkdir(parents=True, exist_ok=True)
    (files / KERNEL).write_bytes(b"kernel")
    (files / RAMDISK).write_bytes(b"ramdisk")
    raw = bytearray(os.urandom(IMAGE_BYTES))
    raw[510:512] = b"\x55\xaa"
    raw_path = files / "disk.raw"
    raw_path.write_bytes(bytes(raw))
    qcow2_path = files / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw_path),
                    str(qcow2_path)], check=True)
    return {"raw": raw_path, "qcow2": qcow2_path}


@contextmanager
def boot_service(base: Path, db: Database, files: Path, boot_socket: socket.socket,
                 image_store_dir: Path | None = None,
                 image_token_secret: str | None = None) -> Iterator[str]:
    """The boot service's HTTP app (files, iPXE scripts, image cache, the image store's range
    reads, checking image tokens under ``image_token_secret``) in a thread; its URL."""
    boot_url = url_of(boot_socket)
    settings = Settings(
        process={"data_dir": base},
        boot={"files_dir": files, "public_url": boot_url},
        images={"cache_dir": base / "image-cache", "store_dir": image_store_dir,
                "token_secret": image_token_secret},
    )
    with serving(create_boot_app(settings, db), boot_socket):
        yield boot_url


@contextmanager
def running_deploy_lab(base: Path, env: dict[str, str] | None = None) -> Iterator[DeployLab]:
    """``enclume-aio`` (with ``env``) and the boot service's HTTP app on its database."""
    require_agent_python()
    images = write_boot_files(base / "boot-files")
    boot_socket = bound_socket()
    env = {"ENCLUME_BOOT_PUBLIC_URL": url_of(boot_socket),
           "ENCLUME_POWER_POLL_INTERVAL_S": "0.1", "ENCLUME_AGENT_HEARTBEAT_TIMEOUT_S": "3",
           **(env or {})}
    data_dir = base / "aio"
    with running_aio(data_dir, env=env) as aio:
        db = Database(f"sqlite:///{data_dir / 'enclume.sqlite'}")
        with boot_service(base, db, base / "boot-files", boot_socket) as boot_url, \
                httpx.Client(base_url=aio.url, headers=HEADERS, timeout=30) as api:
            yield DeployLab(api, boot_url, db, images)


@dataclass
class Machine:
    uuid: str
    mac: str
    disk: Path
    hardware: AgentMachine


@dataclass
class DeployLab:
    api: httpx.Client
    boot_url: str
    db: Database
    images: dict[str, Path]
    machines: list[AgentMachine] = field(default_factory=list)

    def add_machine(self, bmcs: IpmiPeers, workdir: Path, **fields: Any) -> Machine:
        """A machine behind a new BMC of ``bmcs``, enrolled as an ``ipmi`` node with a port."""
        i = next(_MAC)
        mac = f"52:54:00:7e:{i >> 8 & 0xff:02x}:{i & 0xff:02x}"
        directory = workdir / mac.replace(":", "")
        directory.mkdir(parents=True)
        disk = directory / "disk.img"
        with disk.open("wb") as handle:
            handle.truncate(DISK_BYTES)
        hardware = AgentMachine(self.boot_url, mac, disk, directory)
        self.machines.append(hardware)
        port = bmcs.fleet.add(hardware)
        body = {"driver": "ipmi", "driver_info": {
            **bmcs.driver_info(port), "deploy_kernel": KERNEL, "deploy_ramdisk": RAMDISK},
            "properties": {"capabilities": "boot_mode:bios"}, **fields}
        created = self.api.post("/v1/nodes", json=body)
        assert created.status_code == 201, created.text
        uuid = created.json()["uuid"]
        port_made = self.api.post("/v1/ports", json={"node_uuid": uuid, "address": mac})
        assert port_made.status_code == 201, port_made.text
        return Machine(uuid, mac, disk, hardware)

    def close_machines(self) -> None:
        for hardware in self.machines:
            hardware.close()
        self.machines.clear()

    # -- the API --------------------------------------------------------------------------

    def node(self, uuid: str) -> dict[str, Any]:
        response = self.api.get(f"/v1/nodes/{uuid}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def provision(self, machine: Machine, target: str, **body: Any) -> None:
        response = self.api.put(f"/v1/nodes/{machine.uuid}/states/provision",
                                json={"target": target, **body})
        assert response.status_code == 202, response.text

    def settled(self, machine: Machine, state: str, timeout: float = STEP_TIMEOUT_S,
                extra_logs: str = "") -> dict[str, Any]:
        """Wait until the node rests in ``state``; fail early (with the agent's logs) if it
        rests elsewhere."""
        deadline = time.monotonic() + timeout
        current: dict[str, Any] = {}
        while time.monotonic() < deadline:
            current = self.node(machine.uuid)
            here = current["provision_state"] == state
            if here and (current["target_provision_state"] is None or state.endswith("failed")):
                return current
            if current["provision_state"] in RESTING - {state}:
                break
            time.sleep(0.1)
        raise AssertionError(f"node is {current.get('provision_state')!r}, not {state!r}: "
                             f"{current.get('last_error')}\n{machine.hardware.logs()}"
                             f"\n{extra_logs}")

    def set_image(self, machine: Machine, **instance_info: Any) -> None:
        patch = [{"op": "add", "path": "/instance_info", "value": instance_info}]
        response = self.api.patch(f"/v1/nodes/{machine.uuid}", json=patch)
        assert response.status_code == 200, response.text

    def image_info(self, kind: str, **extra: Any) -> dict[str, Any]:
        path = self.images[kind]
        return {"image_source": f"{self.boot_url}/files/{path.name}",
                "image_os_hash_algo": "sha256",
                "image_os_hash_value": hashlib.sha256(path.read_bytes()).hexdigest(),
                "image_disk_format": kind, **extra}

    def stored_internal_info(self, uuid: str) -> dict[str, Any]:
        with self.db.session() as session:
            found = session.query(Node).filter_by(uuid=uuid).one()
            return dict(found.driver_internal_info)

    def assert_agent_forgotten(self, machine: Machine) -> None:
        info = self.stored_internal_info(machine.uuid)
        leftovers = {"agent_secret_token", "agent_url", "agent_command", "boot"} & set(info)
        assert not leftovers, info

    def make_available(self, machine: Machine) -> None:
        self.provision(machine, "manage")
        self.settled(machine, "manageable")
        self.provision(machine, "provide")
        self.settled(machine, "available")


# -- disks -----------------------------------------------------------------------------------


def disk_head(machine: Machine, size: int) -> bytes:
    with machine.disk.open("rb") as handle:
        return handle.read(size)


def bootable(machine: Machine) -> bool:
    return disk_head(machine, 512)[510:512] == b"\x55\xaa"


def put_old_os_on(machine: Machine) -> None:
    """A boot sector of an earlier operating system, as a used machine has."""
    sector = bytearray(b"\x01" * 512)
    sector[:9] = b"\xeb\x63\x90OLD-OS"
    sector[510:] = b"\x55\xaa"
    with machine.disk.open("r+b") as handle:
        handle.write(sector)
    assert bootable(machine)


def deploy_lab_fixtures(name: str) -> tuple[Any, Any]:
    """A test module's ``lab`` fixture (one running deploy lab for the module, its files under
    a temporary directory ``name``) and ``machines`` (the lab; the machines a test added are
    stopped at its end): ``lab, machines = deploy_lab_fixtures("deploy-agent")``."""

    @pytest.fixture(scope="module")
    def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployLab]:
        with running_deploy_lab(tmp_path_factory.mktemp(name)) as running:
            yield running

    @pytest.fixture
    def machines(lab: DeployLab, ipmi_fleet: IpmiPeers) -> Iterator[DeployLab]:
        try:
            yield lab
        finally:
            lab.close_machines()

    return lab, machines
