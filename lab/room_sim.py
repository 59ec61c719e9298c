"""A classroom on one machine: N real agents in network namespaces, restored by the real services.

    with room_sim(workdir, RoomSpec(pcs=8, pc_mbit=8, uplink_mbit=80, image_bytes=4 * MiB)) as room:
        job = room.restore()                      # POST /enclume/v1/rooms/ROOM/actions, followed
        assert all(room.disk_matches(pc) for pc in room.pcs)

- The network (lab/room_network.py): one bridge, one namespace per PC with the PC's MAC, PC
  links and the server's uplink shaped apart with tbf.
- The services, in the root namespace on the room's server address (10.X.Y.1): ``enclume-aio``
  (API, conductor, job advancer, on SQLite) and the boot service's HTTP side (lab/boot_http.py:
  files and the image store's range reads, checking image tokens) on the same database.
- The image: random bytes (nothing for a sparse write to skip) with a boot signature, a
  catalogue version of image ``IMAGE`` held by the image store, so that a room restore is the
  block restore of a catalogue version, as in a real room.
- The PCs: ``fake-hardware`` nodes (fake power and boot: powering is not what is measured; the
  agent is already running, as after a network boot) with the ``direct`` deploy, a port with
  the PC's MAC, ``available``, in room ``ROOM`` (or shared by ``spec.rooms`` rooms on the same
  network, for rooms restored at once). Each runs the real agent
  (``python3 -m agent.main`` with Debian's python3, the ramdisk's interpreter) inside its
  namespace, on a sparse file as its disk: lookup, heartbeats, the image's download through the
  shaped links and its write are the real ones.

Processes are stopped by PID (agents, then the services) and the namespaces removed on exit,
also when the body raised.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lab.local_service import Server, free_port, running_aio, start_service, stop_service
from lab.room_network import PcLink, RoomNetwork, room_network
from services.images import tokens
from services.images.store import ImageStore

REPO = Path(__file__).resolve().parents[1]
RAMDISK_PYTHON = "/usr/bin/python3"  # Debian's python3.11, the ramdisk's interpreter
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
E = "/enclume/v1"
MiB = 1024 * 1024
ROOM, IMAGE = "SIM", "sim-image"
ENDED = ("done", "failed", "failed-partly")
TOKEN_SECRET = "room-simulation-image-token-secret"  # shared by the conductor and boot service
AGENT_LISTENING = b"command API listening"  # the agent's log once it serves commands
TRANSFER_FIELD = "transfer"  # the room's unicast/multicast setting, when the API has it


@dataclass(frozen=True)
class RoomSpec:
    pcs: int
    pc_mbit: float
    uplink_mbit: float
    image_bytes: int
    heartbeat_s: float = 0.5  # the agents' heartbeat interval
    lookup_retry_s: float = 0.5
    callback_timeout_s: float = 1800.0  # a node waiting for its agent longer fails
    multicast_rate_share: float = 0.95  # the sender's rate cap, of a PC's link (95 of 100 Mbit)
    multicast_start_wait_s: float = 2.0  # the agents are running already: no ramdisk boots
    rooms: int = 1  # the PCs split into this many rooms (ROOM, then ROOM2, ROOM3...)
    env: dict[str, str] = field(default_factory=dict)  # more ENCLUME_* for enclume-aio


@dataclass
class SimPc:
    link: PcLink
    uuid: str
    disk: Path
    log: Path
    agent: subprocess.Popen[bytes] | None = None

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class RoomSim:
    spec: RoomSpec
    network: RoomNetwork
    aio: Server
    boot: Server
    api: httpx.Client
    image: Path
    image_sha256: str
    pcs: list[SimPc] = field(default_factory=list)

    def restore(self, transfer: str | None = None, timeout: float = 600.0,
                during: Any = None) -> dict[str, Any]:
        """Restore the whole room and follow the job to its end (``during(room, job)`` is
        called on each poll); the ended job, with ``wall_s`` (request to end, as seen here)."""
        return self.restore_rooms([ROOM], transfer, timeout, during)[0]

    def restore_rooms(self, rooms: list[str], transfer: str | None = None,
                      timeout: float = 600.0, during: Any = None) -> list[dict[str, Any]]:
        """Restore ``rooms`` at once (one request each, back to back) and follow their jobs to
        their ends (``during(room, job)`` on each poll of the first room's job)."""
        if transfer is not None:
            for name in rooms:
                self.set_transfer(transfer, name)
        started = time.monotonic()
        jobs = [ok(self.api.post(f"{E}/rooms/{name}/actions", json={"action": "restore"}), 202)
                for name in rooms]
        deadline = started + timeout
        while any(job["state"] not in ENDED for job in jobs):
            if time.monotonic() > deadline:
                raise AssertionError(f"a room's job is still running after {timeout} s:"
                                     f" {[job['pcs'] for job in jobs]}\n{self.diagnostics()}")
            time.sleep(0.2)
            jobs = [ok(self.api.get(f"{E}/jobs/{job['uuid']}")) for job in jobs]
            if during is not None:
                during(self, jobs[0])
        return [{**job, "wall_s": round(time.monotonic() - started, 2)} for job in jobs]

    def set_transfer(self, transfer: str, room: str = ROOM) -> None:
        """The room's transfer mode; refused while the API has no such setting."""
        response = self.api.patch(f"{E}/rooms/{room}", json={TRANSFER_FIELD: transfer})
        if response.status_code != 200 or response.json().get(TRANSFER_FIELD) != transfer:
            raise TransferUnsupported(f"the API does not take the room's {TRANSFER_FIELD!r}: "
                                      f"{response.status_code} {response.text[:300]}")

    def room_names(self) -> list[str]:
        return [ROOM, *(f"{ROOM}{number}" for number in range(2, self.spec.rooms + 1))]

    def pcs_of(self, number: int) -> list[SimPc]:
        """The PCs of room ``number`` (from 0): a contiguous share of the network's PCs."""
        share = -(-len(self.pcs) // self.spec.rooms)
        return self.pcs[number * share:(number + 1) * share]

    def multicast_session(self, pc: SimPc) -> dict[str, Any] | None:
        """The boot service's multicast session the PC was started in (``state``: waiting,
        sending, done...), None while it has none (not started yet, or unicast)."""
        info = ok(self.api.get(f"/v1/nodes/{pc.uuid}"))["instance_info"] or {}
        session, version = info.get("multicast_session"), info.get("image_version")
        if not isinstance(session, dict) or not isinstance(version, str):
            return None
        token = tokens.issue(TOKEN_SECRET.encode(), version, 60)
        response = httpx.get(f"{self.boot.url}/multicast-sessions/{session['id']}",
                             headers={tokens.HEADER: token}, timeout=10)
        return None if response.status_code == 404 else ok(response)

    def cut_power(self, pc: SimPc) -> None:
        """The PC goes dark at once: its agent and what it started (its uftpd) are killed
        (SIGKILL), its disk left as it is."""
        if pc.agent is not None and pc.agent.poll() is None:
            pc.agent.send_signal(signal.SIGKILL)
            pc.agent.wait()
        _kill_the_rest(pc)

    def disk_matches(self, pc: SimPc) -> bool:
        digest = hashlib.sha256()
        remaining = self.spec.image_bytes
        with pc.disk.open("rb") as handle:
            while remaining and (chunk := handle.read(min(4 * MiB, remaining))):
                digest.update(chunk)
                remaining -= len(chunk)
        return remaining == 0 and digest.hexdigest() == self.image_sha256

    def diagnostics(self) -> str:
        tails = [f"--- {pc.link.namespace}\n{pc.logs()[-1500:]}" for pc in self.pcs
                 if pc.agent is not None and pc.agent.poll() is not None]
        return "\n".join([f"--- aio\n{self.aio.log_text()[-3000:]}",
                          f"--- boot\n{self.boot.log_text()[-1500:]}", *tails])


class TransferUnsupported(RuntimeError):
    """The API has no per-room transfer setting (unicast/multicast) yet."""


def ok(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise AssertionError(f"{response.request.method} {response.request.url}: "
                             f"{response.status_code} {response.text[:500]}")
    return response.json() if response.content else None


def write_image(path: Path, size: int) -> str:
    """Random bytes with an MBR boot signature; its sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for offset in range(0, size, MiB):
            chunk = bytearray(os.urandom(min(MiB, size - offset)))
            if offset == 0:
                chunk[510:512] = b"\x55\xaa"
            handle.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _services_env(base: Path, spec: RoomSpec, boot_url: str,
                  net: RoomNetwork) -> dict[str, str]:
    return {"ENCLUME_DATA_DIR": str(base / "aio"), "ENCLUME_BOOT_PUBLIC_URL": boot_url,
            "ENCLUME_BOOT_FILES_DIR": str(base / "boot-files"),
            "ENCLUME_IMAGE_STORE_DIR": str(base / "image-store"),
            "ENCLUME_IMAGE_CACHE_DIR": str(base / "image-cache"),
            "ENCLUME_IMAGE_TOKEN_SECRET": TOKEN_SECRET,
            # The API listens on the room's server address, which only the room's namespaces
            # reach: no users to log in, as on loopback.
            "ENCLUME_AUTH_STRATEGY": "noauth", "ENCLUME_ALLOW_NOAUTH_OFF_LOOPBACK": "true",
            "ENCLUME_CLASSROOM_INTERVAL_S": "0.3", "ENCLUME_POWER_POLL_INTERVAL_S": "0.1",
            "ENCLUME_POWER_SYNC_INTERVAL_S": "3600", "ENCLUME_PERIODIC_INTERVAL_S": "1",
            "ENCLUME_CALLBACK_TIMEOUT_S": str(spec.callback_timeout_s),
            "ENCLUME_AGENT_HEARTBEAT_TIMEOUT_S": str(max(3.0, 6 * spec.heartbeat_s)),
            # A multicast room: the boot service's uftp sends out of the server's veth
            # (the uplink) at a rate scaled like the links.
            "ENCLUME_MULTICAST_INTERFACE": net.server_interface,
            **_multicast_slots(net),
            "ENCLUME_MULTICAST_RATE_MBIT": f"{spec.pc_mbit * spec.multicast_rate_share:.3f}",
            "ENCLUME_MULTICAST_START_WAIT_S": str(spec.multicast_start_wait_s),
            **spec.env}


def _multicast_slots(net: RoomNetwork) -> dict[str, str]:
    """Groups and ports of this simulation's own: every simulated room's sender runs in the
    root namespace, where two on the same port base take each other's receivers (and a test's
    vde room may be streaming there too). The groups follow the room's network (10.X.Y.0/24,
    unique among those alive), the ports too, spread over 20000-59999 in windows of 32 (the
    16 sessions' port pairs)."""
    second, third = net.network.network_address.packed[1:3]
    window = ((second - 200) * 256 + third) % 1250
    return {"ENCLUME_MULTICAST_GROUP_RANGE": f"239.{second}.{third}.0/27",
            "ENCLUME_MULTICAST_PORT_BASE": str(20000 + 32 * window),
            "ENCLUME_MULTICAST_MAX_SESSIONS": "16"}


def _enroll(api: httpx.Client, link: PcLink) -> str:
    node = ok(api.post("/v1/nodes", json={
        "driver": "fake-hardware", "name": f"sim-pc{link.index}", "deploy_interface": "direct",
        "boot_interface": "fake", "automated_clean": False}), 201)
    ok(api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": link.mac}), 201)
    return str(node["uuid"])


def _make_available(api: httpx.Client, uuids: list[str], timeout: float = 120) -> None:
    for target, state in (("manage", "manageable"), ("provide", "available")):
        for uuid in uuids:
            ok(api.put(f"/v1/nodes/{uuid}/states/provision", json={"target": target}), 202)
        deadline = time.monotonic() + timeout
        for uuid in uuids:
            while ok(api.get(f"/v1/nodes/{uuid}"))["provision_state"] != state:
                if time.monotonic() > deadline:
                    raise AssertionError(f"node {uuid} never became {state}")
                time.sleep(0.1)


def _start_agent(room: RoomSim, pc: SimPc, workdir: Path) -> None:
    link, spec = pc.link, room.spec
    cmdline = workdir / "cmdline"
    cmdline.write_text(f"quiet enclume.api_url={room.aio.url} "
                       f"BOOTIF=01-{link.mac.replace(':', '-')}\n")
    argv = link.exec_argv(
        RAMDISK_PYTHON, "-m", "agent.main", "--cmdline-file", str(cmdline), "--mac", link.mac,
        "--port", "9999", "--listen-host", link.address, "--advertise-host", link.address,
        "--lldp-interface", "lo", "--heartbeat-interval", str(spec.heartbeat_s),
        "--lookup-retry", str(spec.lookup_retry_s), "--staging-dir", str(workdir),
        "--disk", str(pc.disk), "--poweroff-command", "true", "--reboot-command", "true",
        "--lockdown-command", "true",
        "--power-action-delay", "0.1")
    with pc.log.open("ab") as out:
        pc.agent = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, "PYTHONPATH": str(REPO)})


def _kill_the_rest(pc: SimPc) -> None:
    """SIGKILL whatever still runs in the PC's namespace (children of a killed agent: they
    would keep the namespace alive after its deletion)."""
    listed = subprocess.run(["ip", "netns", "pids", pc.link.namespace], capture_output=True,
                            text=True, check=False).stdout
    for pid in (int(word) for word in listed.split() if word.isdigit()):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait_listening(pcs: list[SimPc], timeout: float = 300) -> None:
    """Until every agent's command API listens: the PCs are running their ramdisks when the
    room is handed out, so a restore's start does not include 40 Python processes starting
    on this machine's cores (a real room's PCs boot on their own CPUs)."""
    deadline = time.monotonic() + timeout
    for pc in pcs:
        while AGENT_LISTENING not in (pc.log.read_bytes() if pc.log.exists() else b""):
            if pc.agent is not None and pc.agent.poll() is not None:
                raise RuntimeError(f"the agent of {pc.link.namespace} exited:\n{pc.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the agent of {pc.link.namespace} is not listening after "
                                   f"{timeout} s:\n{pc.logs()[-1500:]}")
            time.sleep(0.1)


def _stop_agents(pcs: list[SimPc]) -> None:
    running = [pc.agent for pc in pcs if pc.agent is not None and pc.agent.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pc in pcs:
        _kill_the_rest(pc)


def _add_image(room: RoomSim, base: Path) -> None:
    created = ok(room.api.post(f"{E}/images", json={"name": IMAGE, "versions": [{
        "version": "v1", "source": f"{room.boot.url}/files/{room.image.name}",
        "checksum": room.image_sha256}]}), 201)
    store = ImageStore(base / "image-store", 4 * room.spec.image_bytes + 64 * MiB)
    store.ingest_file(str(created["versions"][0]["uuid"]), room.image, room.image_sha256)


@contextmanager
def room_sim(base: Path, spec: RoomSpec) -> Iterator[RoomSim]:
    """The room of ``spec`` under ``base``, ready to be restored (see the module's doc)."""
    files = base / "boot-files"
    files.mkdir(parents=True, exist_ok=True)
    image = files / "room.img"
    image_sha256 = write_image(image, spec.image_bytes)
    with ExitStack() as stack:
        net = stack.enter_context(room_network(spec.pcs, spec.pc_mbit, spec.uplink_mbit))
        host = net.server_address
        boot_port = free_port(host)
        env = _services_env(base, spec, f"http://{host}:{boot_port}", net)
        aio = stack.enter_context(running_aio(base / "aio", env=env, host=host))
        boot = start_service([sys.executable, "-m", "lab.boot_http"], "boot",
                             boot_port, base / "boot",
                             {**env, "ENCLUME_BOOT_HTTP_HOST": host,
                              "ENCLUME_BOOT_HTTP_PORT": str(boot_port),
                              "PYTHONPATH": str(REPO)},
                             ready_path=f"/files/{image.name}", host=host)
        stack.callback(stop_service, boot)
        api = stack.enter_context(httpx.Client(base_url=aio.url, headers=HEADERS, timeout=60))
        room = RoomSim(spec, net, aio, boot, api, image, image_sha256)
        stack.callback(_stop_agents, room.pcs)
        _add_image(room, base)
        for link in net.pcs:
            workdir = base / "pcs" / f"pc{link.index}"
            workdir.mkdir(parents=True)
            disk = workdir / "disk.img"
            with disk.open("wb") as handle:
                handle.truncate(spec.image_bytes + MiB)
            room.pcs.append(SimPc(link, _enroll(api, link), disk, workdir / "agent.log"))
        _make_available(api, [pc.uuid for pc in room.pcs])
        for number, name in enumerate(room.room_names()):
            ok(api.post(f"{E}/rooms", json={"name": name, "time_zone": "UTC",
                                            "allowed_images": [IMAGE], "default_image": IMAGE,
                                            "pcs": [pc.uuid for pc in room.pcs_of(number)]}),
               201)
        for pc in room.pcs:
            _start_agent(room, pc, pc.disk.parent)
        _wait_listening(room.pcs)
        yield room
