"""image.capture_blocks: the real agent process captures a file-backed disk into the image store
through the boot service's capture routes (uvicorn on loopback).

The disk holds the project's test OS image: the version made reads back byte-identical; a
second capture of a slightly changed disk sends only the changed blocks; a capture cut in the
middle keeps no version, and the next attempt sends only what the first did not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ramdisk.testimages import ensure_built as ensure_test_images_built
from services.boot.image_capture import image_capture_routes
from services.classroom.image_capture import CaptureTarget, Refused
from services.images.manifest import Manifest
from services.images.store import ImageStore
from tests.integration.test_agent_harness import (
    FakeApi,
    RunningAgent,
    fake_api_fixture,  # noqa: F401 (the fake_api fixture)
    running_agent,
)
from tests.support.asgi import serving
from tests.support.disk_images import MiB

pytestmark = pytest.mark.integration
DISK_SIZE = 48 * MiB  # the test image (32 MiB) and zeros after it
BLOCK = 4 * MiB


class MemoryCaptures:
    """A capture authority that knows one node's token: the catalogue as a dict."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.version = "v1"
        self.catalogue: dict[str, dict[str, Any]] = {}

    def target(self, node_uuid: str, token: str | None) -> CaptureTarget:
        if token != self.token:
            raise Refused(403, "invalid agent token")
        return CaptureTarget(session=f"session-{self.version}", image="image-uuid",
                             version=self.version)

    def record(self, target: CaptureTarget, version_id: str, manifest: Manifest
               ) -> dict[str, Any]:
        document = {"uuid": version_id, "version": target.version, "size": manifest.size,
                    "checksum": manifest.image_sha256}
        self.catalogue[target.version] = document
        return document

    def recorded(self, target: CaptureTarget) -> dict[str, Any] | None:
        return self.catalogue.get(target.version)


class CutAfter:
    """Answers 503 to block uploads once ``allowed`` of them went through (a network cut);
    counts the bytes of the block uploads' bodies as they arrive, by encoding."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.allowed = app, None
        self.seen = 0
        self.wire: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "PUT":
            if self.allowed is not None:
                self.seen += 1
                if self.seen > self.allowed:
                    await PlainTextResponse("cut", status_code=503)(scope, receive, send)
                    return
            encoding = dict(scope["headers"]).get(b"content-encoding", b"identity").decode()

            async def counting() -> Message:
                message = await receive()
                self.wire[encoding] = (self.wire.get(encoding, 0)
                                       + len(message.get("body", b"")))
                return message

            await self.app(scope, counting, send)
            return
        await self.app(scope, receive, send)


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store", max_bytes=1024 * MiB)


@pytest.fixture
def captures() -> MemoryCaptures:
    return MemoryCaptures()


@pytest.fixture
def cut(store: ImageStore, captures: MemoryCaptures) -> Iterator[tuple[str, CutAfter]]:
    app = CutAfter(Starlette(routes=image_capture_routes(store, captures)))
    with serving(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def test_image() -> Path:
    """The lab's test OS disk (`make testimages`), built now if missing or stale (about 15 s)."""
    return ensure_test_images_built().disk_raw


@pytest.fixture
def disk(tmp_path: Path, test_image: Path) -> Path:
    path = tmp_path / "disk.img"
    shutil.copyfile(test_image, path)
    with path.open("r+b") as out:
        out.truncate(DISK_SIZE)
    return path


@pytest.fixture
def agent(fake_api: FakeApi, tmp_path: Path, disk: Path, captures: MemoryCaptures
          ) -> Iterator[RunningAgent]:
    with running_agent(fake_api, tmp_path, [disk]) as running:
        captures.token = running.token
        yield running


@pytest.fixture
def plain_agent(fake_api: FakeApi, tmp_path: Path, disk: Path, captures: MemoryCaptures,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningAgent]:
    """An agent that cannot import zstandard (an unknown import policy makes it refuse)."""
    monkeypatch.setenv("PYTHON_ZSTANDARD_IMPORT_POLICY", "none")
    with running_agent(fake_api, tmp_path, [disk]) as running:
        captures.token = running.token
        yield running


def capture(agent: RunningAgent, url: str, disk: Path, **params: Any) -> dict[str, Any]:
    node = agent.node.uuid
    return agent.run("image.capture_blocks", {"capture_url": f"{url}/image-captures/{node}",
                                              "target_disk": str(disk), **params})


def partition_bytes(disk: Path, number: int) -> bytes:
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True,
                                      check=True, text=True).stdout)["partitiontable"]
    entry = next(part for part in table["partitions"] if part["node"].endswith(str(number)))
    data = disk.read_bytes()
    return data[entry["start"] * 512:(entry["start"] + entry["size"]) * 512]


def stored_bytes(store: ImageStore, version_id: str) -> bytes:
    return b"".join(store.read_range(version_id, 0, store.manifest(version_id).size))


def test_capture_reads_back_byte_identical_and_skips_zero_blocks(
        agent: RunningAgent, store: ImageStore, cut: tuple[str, CutAfter],
        captures: MemoryCaptures, disk: Path) -> None:
    document = capture(agent, cut[0], disk)
    assert document["command_status"] == "SUCCEEDED", document
    result = document["command_result"]
    version_id = result["version"]["uuid"]
    assert stored_bytes(store, version_id) == disk.read_bytes()
    manifest = store.manifest(version_id)
    assert manifest.image_sha256 == hashlib.sha256(disk.read_bytes()).hexdigest()
    assert result["image_sha256"] == manifest.image_sha256 == result["version"]["checksum"]
    assert result["blocks"] == DISK_SIZE // BLOCK and result["zero_blocks"] >= 4
    distinct = {digest for digest in manifest.blocks if digest is not None}
    assert result["sent_blocks"] == len(distinct)
    assert store.layout.tmp.exists() and not any(store.layout.tmp.iterdir())


def test_a_second_capture_of_a_changed_disk_sends_only_the_changed_blocks(
        agent: RunningAgent, store: ImageStore, cut: tuple[str, CutAfter],
        captures: MemoryCaptures, disk: Path) -> None:
    first = capture(agent, cut[0], disk)["command_result"]
    with disk.open("r+b") as out:  # a file written in block 1, a new one past the image
        out.seek(BLOCK + 12345)
        out.write(b"a teacher's change" * 100)
        out.seek(40 * MiB)
        out.write(b"new data" * 1000)
    captures.version = "v2"
    document = capture(agent, cut[0], disk)
    assert document["command_status"] == "SUCCEEDED", document
    second = document["command_result"]
    assert second["sent_blocks"] == 2 and second["sent_bytes"] == 2 * BLOCK
    assert second["zero_blocks"] == first["zero_blocks"] - 1
    assert stored_bytes(store, second["version"]["uuid"]) == disk.read_bytes()
    assert stored_bytes(store, first["version"]["uuid"]) != disk.read_bytes()


def test_an_interrupted_capture_keeps_nothing_and_the_retry_resumes(
        agent: RunningAgent, store: ImageStore, cut: tuple[str, CutAfter],
        captures: MemoryCaptures, disk: Path) -> None:
    url, cutter = cut
    cutter.allowed = 2
    document = capture(agent, url, disk)
    assert document["command_status"] == "FAILED"
    assert "HTTP 503" in document["command_error"]
    assert store.versions() == [] and captures.catalogue == {}
    cutter.allowed = None
    document = capture(agent, url, disk)
    assert document["command_status"] == "SUCCEEDED", document
    result = document["command_result"]
    distinct = {digest for digest in store.manifest(result["version"]["uuid"]).blocks if digest}
    assert result["sent_blocks"] == len(distinct) - 2
    assert stored_bytes(store, result["version"]["uuid"]) == disk.read_bytes()


def test_a_killed_agent_leaves_no_version_and_the_session_is_collected(
        agent: RunningAgent, store: ImageStore, cut: tuple[str, CutAfter], disk: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, cutter = cut
    cutter.allowed = 1
    capture(agent, url, disk)
    agent.process.kill()  # what stays is what a PC powered off mid-capture leaves
    agent.process.wait()
    assert store.versions() == []
    assert store.gc().stale_ingests == 0  # a fresh session is kept for a retry
    monkeypatch.setattr("services.images.capture.IDLE_S", -1)
    assert store.gc().stale_ingests == 1
    assert not any(store.layout.tmp.iterdir())


def test_a_wrong_token_is_refused(agent: RunningAgent, cut: tuple[str, CutAfter],
                                  captures: MemoryCaptures, disk: Path,
                                  store: ImageStore) -> None:
    captures.token = "another agent's"
    document = capture(agent, cut[0], disk)
    assert document["command_status"] == "FAILED"
    assert "HTTP 403" in document["command_error"]
    assert store.versions() == []


def test_the_routes_refuse_a_block_that_does_not_match_its_hash(
        store: ImageStore, captures: MemoryCaptures) -> None:
    from starlette.testclient import TestClient

    captures.token = "t" * 43
    data = bytes(range(256)) * 16
    digest = hashlib.sha256(data).hexdigest()
    manifest = Manifest(size=len(data), image_sha256=digest, blocks=(digest,))
    headers = {"X-Agent-Token": captures.token}
    with TestClient(Starlette(routes=image_capture_routes(store, captures))) as client:
        base = "/image-captures/node"
        answer = client.post(f"{base}/manifest", content=manifest.to_json(), headers=headers)
        assert answer.json() == {"missing": [digest]}
        assert client.put(f"{base}/blocks/{digest}", content=data[:-1] + b"x",
                          headers=headers).status_code == 422
        assert client.post(f"{base}/commit", headers=headers).status_code == 409
        assert client.put(f"{base}/blocks/{digest}", content=data,
                          headers=headers).status_code == 204
        committed = client.post(f"{base}/commit", headers=headers)
        assert committed.status_code == 200, committed.text
        assert stored_bytes(store, committed.json()["uuid"]) == data
        again = client.post(f"{base}/commit", headers=headers)  # its answer was lost
        assert again.status_code == 200 and again.json() == committed.json()
        assert store.versions() == [committed.json()["uuid"]]



def test_blocks_travel_zstd_compressed_in_fewer_bytes_than_plain(
        agent: RunningAgent, store: ImageStore, cut: tuple[str, CutAfter], disk: Path) -> None:
    document = capture(agent, cut[0], disk)
    assert document["command_status"] == "SUCCEEDED", document
    result = document["command_result"]
    assert result["wire_encoding"] == "zstd"
    wire = cut[1].wire
    assert wire.get("zstd", 0) > 0, wire  # the test OS image's blocks compress
    assert sum(wire.values()) == result["wire_bytes"] < result["sent_bytes"]
    assert stored_bytes(store, result["version"]["uuid"]) == disk.read_bytes()


def test_an_agent_without_zstd_sends_its_blocks_plain(
        plain_agent: RunningAgent, store: ImageStore, cut: tuple[str, CutAfter],
        disk: Path) -> None:
    document = capture(plain_agent, cut[0], disk)
    assert document["command_status"] == "SUCCEEDED", document
    result = document["command_result"]
    assert result["wire_encoding"] == "identity"
    assert cut[1].wire == {"identity": result["sent_bytes"]} and result["sent_bytes"] > 0
    assert result["wire_bytes"] == result["sent_bytes"]
    assert stored_bytes(store, result["version"]["uuid"]) == disk.read_bytes()


def test_a_partition_capture_reads_back_the_partition_named(
        agent: RunningAgent, store: ImageStore, cut: tuple[str, CutAfter], disk: Path) -> None:
    """The test OS image's one partition (FAT, so it is named: it is not a Linux one)."""
    expected = partition_bytes(disk, 1)
    document = capture(agent, cut[0], disk, image_type="partition", root_partition=1)
    assert document["command_status"] == "SUCCEEDED", document
    result = document["command_result"]
    assert result["image_type"] == "partition" and result["partition"] == 1
    assert result["image_size"] == len(expected) < DISK_SIZE
    version_id = result["version"]["uuid"]
    assert stored_bytes(store, version_id) == expected
    assert store.manifest(version_id).image_sha256 == hashlib.sha256(expected).hexdigest()


def test_a_partition_capture_takes_the_largest_linux_partition_by_default(
        agent: RunningAgent, store: ImageStore, cut: tuple[str, CutAfter], disk: Path) -> None:
    with disk.open("r+b") as out:
        out.write(bytes(DISK_SIZE))
    layout = ("label: gpt\n"
              "size=8MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"  # /boot
              "size=22MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709\n"  # the root
              "size=12MiB, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F\n")  # swap, not Linux
    subprocess.run(["sfdisk", "--quiet", str(disk)], input=layout, text=True, check=True)
    root_start = 1 * MiB + 8 * MiB
    with disk.open("r+b") as out:  # a file system's worth of data, zeros between
        for offset in (0, 5 * MiB, 13 * MiB + 4321):
            out.seek(root_start + offset)
            out.write(os.urandom(MiB) + b"/etc/fstab\n" * 50000)
    document = capture(agent, cut[0], disk, image_type="partition")
    assert document["command_status"] == "SUCCEEDED", document
    result = document["command_result"]
    assert result["partition"] == 2 and result["image_size"] == 22 * MiB
    assert stored_bytes(store, result["version"]["uuid"]) == partition_bytes(disk, 2)


def test_a_partition_capture_without_a_linux_partition_says_what_there_is(
        agent: RunningAgent, store: ImageStore, cut: tuple[str, CutAfter], disk: Path) -> None:
    document = capture(agent, cut[0], disk, image_type="partition")
    assert document["command_status"] == "FAILED"
    assert "no Linux partition" in document["command_error"]
    assert "1 (type e," in document["command_error"]
    assert store.versions() == []
