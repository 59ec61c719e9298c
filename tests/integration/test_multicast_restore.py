"""Room restores by multicast: real agents (Debian's python3, as in the ramdisk) in network
namespaces on a vde_switch, each on a file-backed disk, the boot service's multicast sessions
(a real uftp in the root namespace on the switch, the agents' uftpd) and its range reads under
uvicorn, all on one 10.X.Y.0/24 (tests/support/vde_room.py).

Every disk ends byte-identical to the image: with a clean stream (nothing fetched over HTTP);
with one PC dropping 5% of its packets, or 35% of its UDP ones (iptables' statistic match in its
namespace: uftp resends its losses in later passes, the others get the whole stream at the
sender's fixed rate), or all of the stream's data after its first 40% (the quota match: the
stream ends without it, it repairs over HTTP); with the sender killed mid-stream (every agent
falls back to HTTP); with a PC that joins after the stream started, or after it ended (it does
not wait for it); with a block corrupted in the stream (repaired from the manifest). An image
whose block is corrupt in the store too fails the command, the disk left unbootable.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from services.boot.image_blocks import image_block_routes
from services.boot.multicast_routes import multicast_routes
from services.boot.multicast_sender import MulticastSessions
from services.common.config_hardware_sections import MulticastSettings
from services.images import tokens
from services.images.store import ImageStore
from tests.integration.test_agent_harness import (
    FakeApi,
    RunningAgent,
    require_tools,
    running_agent,
)
from tests.support.asgi import serving
from tests.support.vde_room import Room, vde_room

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
BLOCK = 4 * MiB  # the store's block size
IMAGE_SIZE = 4 * BLOCK  # block 2 is all zeros
DISK_SIZE = IMAGE_SIZE + 4 * MiB
VERSION = "v1"
SECRET = b"shared by the conductor and the boot service"
PCS = 3
RATE_MBIT = 32.0
START_WAIT_S = 3.0
STREAM_S = IMAGE_SIZE * 8 / (RATE_MBIT * 1e6) * 1.3  # FEC adds about a quarter


class StreamCorruptingStore(ImageStore):
    """Flips a byte of block ``corrupt_block`` in the multicast stream (the sender reads the
    whole disk at once), or everywhere with ``corrupt_everywhere``."""

    corrupt_block: int | None = None
    corrupt_everywhere = False

    def read_range(self, version_id: str, offset: int, length: int) -> Iterator[bytes]:
        whole = offset == 0 and length == self.manifest(version_id).size
        for piece in super().read_range(version_id, offset, length):
            if (self.corrupt_block is not None and (whole or self.corrupt_everywhere)
                    and offset // BLOCK == self.corrupt_block):
                piece = bytes([piece[0] ^ 0xFF]) + piece[1:]
            offset += len(piece)
            yield piece


@dataclass
class Lab:
    room: Room
    store: StreamCorruptingStore
    sessions: MulticastSessions
    boot_url: str
    agents: list[RunningAgent]
    disks: list[Path]
    image_sha256: str


# A primary partition, then an extended one with three logicals: sfdisk writes their EBRs at
# sectors 6144, 10240 and 24576 (blocks 0, 1 and 3), held back from the stream as the MBR is.
PARTITIONS = (b"label: dos\n2048,4096,L,*\n6144,26624,E\n8192,1024,L\n12288,1024,L\n"
              b"26624,1024,L\n")
TABLE_BYTES = 4 * 512  # the MBR and three EBRs


def make_image(path: Path) -> Path:
    data = bytearray(os.urandom(IMAGE_SIZE))
    data[2 * BLOCK:3 * BLOCK] = bytes(BLOCK)
    path.write_bytes(data)
    subprocess.run(["sfdisk", "-q", str(path)], input=PARTITIONS,
                   check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_tools("uftp", "uftpd", "vde_switch", "vde_plug2tap", "iptables",
                  "sfdisk")
    workdir = tmp_path_factory.mktemp("multicast")
    image = make_image(workdir / "image.raw")
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    store = StreamCorruptingStore(workdir / "store", max_bytes=4 * IMAGE_SIZE)
    store.ingest_file(VERSION, image, digest)
    with vde_room(PCS) as room:
        sessions = MulticastSessions(MulticastSettings(rate_mbit=RATE_MBIT,
                                                       start_wait_s=START_WAIT_S),
                                     room.server_interface, store)
        app = Starlette(routes=[*image_block_routes(store, SECRET),
                                *multicast_routes(sessions, SECRET)])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((room.server_address, 0))
        api = FakeApi(host=room.server_address)
        try:
            with serving(app, sock) as boot_url:
                agents, disks = [], []
                with _agents(api, room, workdir, agents, disks):
                    yield Lab(room, store, sessions, boot_url, agents, disks, digest)
        finally:
            sessions.stop()
            api.close()


class _agents:
    """The PCs' agents, one per namespace, ended whatever happens."""

    def __init__(self, api: FakeApi, room: Room, workdir: Path, agents: list[RunningAgent],
                 disks: list[Path]) -> None:
        self.contexts = []
        for number, pc in enumerate(room.pcs):
            pc_dir = workdir / f"pc{number}"
            pc_dir.mkdir()
            disks.append(pc_dir / "disk.img")
            disks[-1].write_bytes(b"")
            self.contexts.append(running_agent(
                api, pc_dir, [disks[-1]], mac=f"52:54:00:77:00:{number:02x}",
                prefix=pc.exec_argv(), network=["--listen-host", pc.address,
                                                "--advertise-host", pc.address,
                                                "--lldp-interface", pc.interface]))
        self.agents = agents

    def __enter__(self) -> None:
        try:
            for context in self.contexts:
                self.agents.append(context.__enter__())
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __exit__(self, *exc: Any) -> None:
        for context in self.contexts[:len(self.agents)]:
            context.__exit__(None, None, None)


@pytest.fixture
def fresh(lab: Lab) -> Lab:
    """Every disk holds old data (no image), the store serves the image as it is (and the
    sessions' image file is made from it again)."""
    for disk in lab.disks:
        with disk.open("wb") as handle:
            handle.truncate(DISK_SIZE)
            handle.write(b"old data " * 100_000)
    lab.store.corrupt_block, lab.store.corrupt_everywhere = None, False
    for made in lab.sessions.cache.directory.glob("multicast-version-*"):
        made.unlink()  # the sender's file is made again from the store as it reads now
    return lab


def boot_call(lab: Lab, method: str, path: str, body: Any = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(lab.boot_url + path, data=data, method=method, headers={
        tokens.HEADER: tokens.issue(SECRET, VERSION, 600), "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def start_restore(lab: Lab, agent: RunningAgent, session: dict[str, Any], disk: Path,
                  start_timeout_s: float = 30.0) -> dict[str, Any]:
    base = f"{lab.boot_url}/image-versions/{VERSION}"
    status, document = agent.command("deploy.multicast_restore", {
        "image_token": tokens.issue(SECRET, VERSION, 600),
        "manifest_url": f"{base}/manifest", "manifest_sha256": lab.store.manifest_sha256(VERSION),
        "disk_url": f"{base}/disk", "target_disk": str(disk),
        "multicast": {"port": session["port"], "group": session["group"],
                      "joined_url": f"{lab.boot_url}/multicast-sessions/{session['id']}/joined",
                      "start_timeout_s": start_timeout_s, "receive_timeout_s": 2}})
    assert status == 200, document
    return dict(document)


def wait_all(agents: list[RunningAgent], documents: list[dict[str, Any]],
             started: float, timeout: float = 120) -> list[tuple[dict[str, Any], float]]:
    """Each command's final document and how long after ``started`` it ended."""
    ended: dict[int, tuple[dict[str, Any], float]] = {}
    deadline = time.monotonic() + timeout
    while len(ended) < len(agents):
        assert time.monotonic() < deadline, "a multicast restore did not end"
        for number, (agent, document) in enumerate(zip(agents, documents, strict=True)):
            if number in ended:
                continue
            status, current = agent.request("GET", f"/v1/commands/{document['id']}")
            assert status == 200, current
            if current["command_status"] != "RUNNING":
                ended[number] = (current, time.monotonic() - started)
        time.sleep(0.1)
    return [ended[number] for number in range(len(agents))]


def restore_room(lab: Lab, expected: int | None = None) -> list[tuple[dict[str, Any], float]]:
    session = boot_call(lab, "POST", "/multicast-sessions",
                        {"version_id": VERSION, "expected": expected or len(lab.agents)})
    try:
        started = time.monotonic()
        documents = [start_restore(lab, agent, session, disk)
                     for agent, disk in zip(lab.agents, lab.disks, strict=True)]
        return wait_all(lab.agents, documents, started)
    finally:
        boot_call(lab, "DELETE", f"/multicast-sessions/{session['id']}")


def identical(lab: Lab, disk: Path) -> bool:
    with disk.open("rb") as handle:
        return hashlib.sha256(handle.read(IMAGE_SIZE)).hexdigest() == lab.image_sha256


def succeeded(document: dict[str, Any]) -> dict[str, Any]:
    assert document["command_status"] == "SUCCEEDED", document["command_error"]
    return dict(document["command_result"])


def test_a_clean_stream_restores_every_pc_byte_identical(fresh: Lab) -> None:
    ended = restore_room(fresh)
    for (document, _), disk in zip(ended, fresh.disks, strict=True):
        result = succeeded(document)
        assert identical(fresh, disk)
        assert result["transfer"] == "multicast" and result["verified"] is True
    results = [succeeded(document) for document, _ in ended]
    assert all(r["multicast_received_bytes"] == IMAGE_SIZE for r in results), results
    assert all(r["table_fetched_bytes"] == TABLE_BYTES for r in results), results
    # on 2 shared cores a PC may lose a slice now and then; most get everything by multicast
    assert len([r for r in results if r["fetched_bytes"] == 0]) >= PCS - 1, results


def random_loss(probability: float, *match: str) -> list[list[str]]:
    return [["INPUT", *match, "-m", "statistic", "--mode", "random", "--probability",
             str(probability), "-j", "DROP"]]


# uftp's data packets (1300-byte blocks): its announcements, file info, DONE and ABORT are
# shorter, and pass.
STREAM_DATA = ["-p", "udp", "-m", "length", "--length", "1000:65535"]
HEARD_BYTES = IMAGE_SIZE * 2 // 5
LOSSES = {
    "5%-of-every-packet": random_loss(0.05),
    "35%-of-udp": random_loss(0.35, "-p", "udp"),
    # Certain, not random: the stream's first 40% (the quota match counts the bytes), then
    # none of its data, resends included.
    "stream-data-after-its-first-40%": [
        ["INPUT", *STREAM_DATA, "-m", "quota", "--quota", str(HEARD_BYTES), "-j", "ACCEPT"],
        ["INPUT", *STREAM_DATA, "-j", "DROP"]],
}


@pytest.mark.parametrize("loss", list(LOSSES))
def test_a_lossy_pc_does_not_slow_the_others(fresh: Lab, loss: str) -> None:
    """5% of every packet, or 35% of the multicast stream's: uftp sends the lossy PC's losses
    again in later passes (with udpcast, 35% was more than its FEC mended and the PC repaired
    over HTTP; uftp has no FEC to overrun), the others are done after the first. The stream's
    data after its first 40%, resends included: the PC NAKs more than half of the image in
    every pass, the stream ends without it (uftp's -N 50 -m 2) and it repairs over HTTP."""
    lossy = fresh.room.pcs[-1]
    rules = LOSSES[loss]
    for rule in rules:
        subprocess.run(lossy.exec_argv("iptables", "-A", *rule), check=True)
    try:
        ended = restore_room(fresh)
    finally:
        for rule in rules:
            subprocess.run(lossy.exec_argv("iptables", "-D", *rule), check=False)
    results = [succeeded(document) for document, _ in ended]
    assert all(identical(fresh, disk) for disk in fresh.disks)
    if loss.startswith("stream-data"):
        # The session ends without the passes it would have taken; the PC repairs over HTTP
        # (its TCP is not lossy here). It learns it from uftp's ABORT (``multicast_dropped``)
        # or from the session's end.
        dropped = results[-1]
        assert dropped["multicast_received_bytes"] < IMAGE_SIZE // 2, dropped
        assert dropped["fetched_bytes"] >= BLOCK, dropped  # at least the last block
    elif loss.startswith("35%"):  # the stream carried the lossy PC's image, resends included
        assert results[-1]["multicast_received_bytes"] == IMAGE_SIZE, results[-1]
    others = [(r, seconds) for r, (_, seconds) in zip(results[:-1], ended[:-1], strict=True)]
    assert any(r["fetched_bytes"] == 0 for r, _ in others), others  # all by multicast
    # the stream runs at its fixed rate: the others end about when it does
    assert all(seconds < STREAM_S + START_WAIT_S + 15 for _, seconds in others), others


def test_the_sender_killed_mid_stream_every_pc_falls_back_to_http(fresh: Lab) -> None:
    session = boot_call(fresh, "POST", "/multicast-sessions",
                        {"version_id": VERSION, "expected": PCS})
    try:
        started = time.monotonic()
        documents = [start_restore(fresh, agent, session, disk)
                     for agent, disk in zip(fresh.agents, fresh.disks, strict=True)]
        sender = fresh.sessions.get(session["id"])
        assert sender is not None
        deadline = time.monotonic() + 30
        while not sender.started or sender.process is None:  # uftp runs from the start on
            assert time.monotonic() < deadline, "the stream never started"
            time.sleep(0.05)
        time.sleep(STREAM_S / 3)
        os.kill(sender.process.pid, signal.SIGKILL)
        ended = wait_all(fresh.agents, documents, started)
    finally:
        boot_call(fresh, "DELETE", f"/multicast-sessions/{session['id']}")
    results = [succeeded(document) for document, _ in ended]
    assert all(identical(fresh, disk) for disk in fresh.disks)
    assert all(r["multicast_received_bytes"] < IMAGE_SIZE for r in results), results
    assert all(r["fetched_bytes"] > 0 for r in results), results


def test_a_pc_joining_after_the_start_repairs(fresh: Lab) -> None:
    """All three expected: the stream starts START_WAIT_S after the first joined, without the
    late one, which repairs over HTTP."""
    early, late = fresh.agents[:-1], fresh.agents[-1]
    session = boot_call(fresh, "POST", "/multicast-sessions",
                        {"version_id": VERSION, "expected": PCS})
    try:
        started = time.monotonic()
        documents = [start_restore(fresh, agent, session, disk)
                     for agent, disk in zip(early, fresh.disks[:-1], strict=True)]
        sender = fresh.sessions.get(session["id"])
        assert sender is not None
        while not sender.started:
            assert time.monotonic() - started < 30, "the stream never started"
            time.sleep(0.05)
        assert time.monotonic() - started >= START_WAIT_S  # it waited for the third
        time.sleep(STREAM_S / 2)
        documents.append(start_restore(fresh, late, session, fresh.disks[-1],
                                       start_timeout_s=3))
        ended = wait_all(fresh.agents, documents, started)
    finally:
        boot_call(fresh, "DELETE", f"/multicast-sessions/{session['id']}")
    results = [succeeded(document) for document, _ in ended]
    assert all(identical(fresh, disk) for disk in fresh.disks)
    assert results[-1]["multicast_received_bytes"] < IMAGE_SIZE, results[-1]
    assert results[-1]["fetched_bytes"] > 0, results[-1]


def test_a_pc_coming_after_the_stream_ended_repairs_without_waiting_for_it(
        fresh: Lab) -> None:
    """Its receiver would wait its whole start timeout (30 s here) for a sender that is gone:
    the agent sees the session is over and repairs at once."""
    early, late = fresh.agents[:-1], fresh.agents[-1]
    session = boot_call(fresh, "POST", "/multicast-sessions",
                        {"version_id": VERSION, "expected": PCS - 1})
    try:
        started = time.monotonic()
        documents = [start_restore(fresh, agent, session, disk)
                     for agent, disk in zip(early, fresh.disks[:-1], strict=True)]
        sender = fresh.sessions.get(session["id"])
        assert sender is not None
        deadline = time.monotonic() + 30
        while sender.process is None:  # uftp runs from the stream's start on
            assert time.monotonic() < deadline, "the stream never started"
            time.sleep(0.05)
        sender.process.wait(timeout=60)
        came = time.monotonic()
        documents.append(start_restore(fresh, late, session, fresh.disks[-1],
                                       start_timeout_s=30))
        ended = wait_all(fresh.agents, documents, started)
    finally:
        boot_call(fresh, "DELETE", f"/multicast-sessions/{session['id']}")
    result, at = succeeded(ended[-1][0]), ended[-1][1]
    assert identical(fresh, fresh.disks[-1])
    assert result["multicast_received_bytes"] == 0 and result["fetched_bytes"] > 0, result
    assert at - (came - started) < 15, at - (came - started)


def test_a_block_corrupt_in_the_stream_is_repaired_from_the_manifest(fresh: Lab) -> None:
    fresh.store.corrupt_block = 1
    results = [succeeded(document) for document, _ in restore_room(fresh)]
    assert all(identical(fresh, disk) for disk in fresh.disks)
    assert all(r["fetched_bytes"] >= BLOCK for r in results), results


def test_an_image_corrupt_in_the_store_too_is_never_left_bootable(fresh: Lab) -> None:
    fresh.store.corrupt_block, fresh.store.corrupt_everywhere = 1, True
    ended = restore_room(fresh)
    for (document, _), disk in zip(ended, fresh.disks, strict=True):
        assert document["command_status"] == "FAILED", document
        assert "sha256" in document["command_error"]
        with disk.open("rb") as handle:
            assert handle.read(512)[510:] != b"\x55\xaa"  # no partition table left
        assert not identical(fresh, disk)
