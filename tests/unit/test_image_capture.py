"""The capture's staged ingest (services/images/capture.py), the agent's read errors, and the
capture step no clean request may name."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from agent.capture_blocks import Capture
from agent.disks import Disk, DiskError
from services.classroom.image_capture import (
    CaptureTarget,
    DatabaseCaptures,
    Refused,
    capture_step,
)
from services.common.classroom_models import Image
from services.common.db import Database, upgrade_schema
from services.common.models import Node
from services.common.node_fields import AGENT_TOKEN
from services.drivers.base import DriverError
from services.drivers.deploy.cleaning import check_manual_steps
from services.images import capture as captures
from services.images.capture import CaptureIncomplete, UnknownCapture
from services.images.errors import ChecksumMismatch, StoreError, StoreFull
from services.images.manifest import BLOCK_SIZE, Manifest, compute
from services.images.store import ImageStore

MiB = 1024 * 1024


def disk_bytes(seed: int, blocks: int = 3) -> bytes:
    """Two data blocks, a zero block, and a short last block."""
    data = b"".join(hashlib.sha256(f"{seed}-{i}".encode()).digest() * (BLOCK_SIZE // 32)
                    for i in range(2))
    return data + bytes(BLOCK_SIZE) * (blocks - 2) + f"tail {seed}".encode() * 1000


def manifest_of(data: bytes, tmp_path: Path) -> Manifest:
    path = tmp_path / f"disk-{hashlib.sha256(data).hexdigest()[:8]}"
    path.write_bytes(data)
    with path.open("rb") as stream:
        return compute(stream)


def block(data: bytes, index: int) -> bytes:
    return data[index * BLOCK_SIZE:(index + 1) * BLOCK_SIZE]


def send_all(store: ImageStore, session: str, data: bytes, manifest: Manifest) -> list[str]:
    missing = store.capture(session).begin(manifest)
    for index, digest in enumerate(manifest.blocks):
        if digest in missing:
            store.capture(session).stage(digest, block(data, index))
    return missing


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store", max_bytes=64 * MiB)


def test_a_capture_is_a_version_only_after_its_commit(store: ImageStore, tmp_path: Path
                                                      ) -> None:
    data = disk_bytes(1)
    manifest = manifest_of(data, tmp_path)
    missing = store.capture("s1").begin(manifest)
    assert missing == [d for d in manifest.blocks if d is not None]  # in disk order, no zeros
    store.capture("s1").stage(missing[0], block(data, 0))
    with pytest.raises(CaptureIncomplete, match="2 blocks"):
        store.capture("s1").commit("v1", {})
    assert store.versions() == [] and store.capture("s1").missing() == missing[1:]
    send_all(store, "s1", data, manifest)
    store.capture("s1").commit("v1", {"disk_format": "raw"})
    assert store.versions() == ["v1"]
    assert b"".join(store.read_range("v1", 0, len(data))) == data
    assert not any(store.layout.tmp.iterdir())
    with pytest.raises(UnknownCapture):
        store.capture("s1").missing()


def test_a_block_with_another_hash_or_not_in_the_manifest_is_not_kept(
        store: ImageStore, tmp_path: Path) -> None:
    data = disk_bytes(2)
    manifest = manifest_of(data, tmp_path)
    first = store.capture("s").begin(manifest)[0]
    with pytest.raises(ChecksumMismatch):
        store.capture("s").stage(first, block(data, 1))
    other = hashlib.sha256(b"x").hexdigest()
    with pytest.raises(StoreError, match="not in the capture's manifest"):
        store.capture("s").stage(other, b"x")
    assert first in store.capture("s").missing()


def test_a_manifest_whose_image_sha256_is_wrong_keeps_nothing(store: ImageStore,
                                                              tmp_path: Path) -> None:
    data = disk_bytes(3)
    good = manifest_of(data, tmp_path)
    lying = Manifest(size=good.size, image_sha256="0" * 64, blocks=good.blocks)
    send_all(store, "s", data, lying)
    with pytest.raises(ChecksumMismatch, match="nothing was kept"):
        store.capture("s").commit("v", {})
    assert store.versions() == [] and not any(store.layout.tmp.iterdir())


def test_a_second_capture_sends_only_new_blocks_and_a_restart_resumes(
        store: ImageStore, tmp_path: Path) -> None:
    first = disk_bytes(4)
    send_all(store, "a", first, manifest_of(first, tmp_path))
    store.capture("a").commit("v1", {})
    changed = first[:BLOCK_SIZE] + disk_bytes(5)[BLOCK_SIZE:]
    manifest = manifest_of(changed, tmp_path)
    missing = store.capture("b").begin(manifest)
    assert missing == [manifest.blocks[1], manifest.blocks[3]]
    store.capture("b").stage(missing[0], block(changed, 1))
    # the agent dies; a new attempt posts the manifest again: one block left to send
    assert store.capture("b").begin(manifest) == [manifest.blocks[3]]
    store.delete_version("v1")
    store.gc()  # block 0 of v1 is held by the session's hard link
    store.capture("b").stage(manifest.blocks[3], block(changed, 3))
    store.capture("b").commit("v2", {})
    assert b"".join(store.read_range("v2", 0, len(changed))) == changed


def test_a_capture_that_cannot_fit_is_refused_before_any_block(tmp_path: Path) -> None:
    small = ImageStore(tmp_path / "small", max_bytes=BLOCK_SIZE)
    data = disk_bytes(6)
    with pytest.raises(StoreFull, match="ENCLUME_IMAGE_STORE_MAX_BYTES"):
        small.capture("s").begin(manifest_of(data, tmp_path))


def test_gc_keeps_a_fresh_session_and_removes_an_idle_one(store: ImageStore, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    data = disk_bytes(7)
    store.capture("s").begin(manifest_of(data, tmp_path))
    assert store.gc().stale_ingests == 0
    monkeypatch.setattr(captures, "IDLE_S", -1)
    assert store.gc().stale_ingests == 1
    assert not any(store.layout.tmp.iterdir())


def test_a_disk_read_error_fails_the_capture_naming_the_block(tmp_path: Path) -> None:
    path = tmp_path / "disk"
    path.write_bytes(bytes(BLOCK_SIZE))
    disk = Disk(str(path), 3 * BLOCK_SIZE, is_block=False)  # larger than what can be read
    fd = os.open(path, os.O_RDONLY)
    try:
        capture = Capture(disk, fd, client=None, on_progress=lambda *_: None)  # type: ignore[arg-type]
        with pytest.raises(DiskError, match=r"reading block 1 of .* \(offset 4194304\) failed"):
            capture.manifest()
    finally:
        os.close(fd)


def test_no_clean_request_may_name_the_capture_step() -> None:
    with pytest.raises(DriverError, match="not supported"):
        check_manual_steps([{"interface": "deploy", "step": "capture_image",
                             "args": {"capture_url": "http://thief/"}}], "direct")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'capture.sqlite'}"
    upgrade_schema(url)
    return Database(url)


def capturing_node(db: Database, state: str = "clean wait") -> tuple[str, CaptureTarget]:
    with db.session() as session:
        image = Image(name="reference")
        session.add(image)
        session.flush()
        step = capture_step(image, "v1", "http://boot:8080", "n", None)
        step["args"]["boot_mode"] = "bios"
        node = Node(driver="fake-hardware", provision_state=state, driver_internal_info={
            AGENT_TOKEN: "t" * 43, "clean_steps": [step]})
        session.add(node)
        session.flush()
        return node.uuid, CaptureTarget(step["args"]["session"], image.uuid, "v1", "bios")


def test_only_the_nodes_agent_may_send_and_only_while_it_is_captured(db: Database) -> None:
    node_uuid, expected = capturing_node(db)
    captures_db = DatabaseCaptures(db)
    assert captures_db.target(node_uuid, "t" * 43) == expected
    for token, status in ((None, 401), ("x" * 43, 403)):
        with pytest.raises(Refused) as refused:
            captures_db.target(node_uuid, token)
        assert refused.value.status == status
    with pytest.raises(Refused) as unknown:
        captures_db.target("00000000-0000-0000-0000-000000000000", "t" * 43)
    assert unknown.value.status == 404
    other_uuid, _ = capturing_node_in(db, "manageable")
    with pytest.raises(Refused) as idle:
        captures_db.target(other_uuid, "t" * 43)
    assert idle.value.status == 409


def capturing_node_in(db: Database, state: str) -> tuple[str, None]:
    with db.session() as session:
        node = Node(driver="fake-hardware", provision_state=state,
                    driver_internal_info={AGENT_TOKEN: "t" * 43})
        session.add(node)
        session.flush()
        return node.uuid, None


def test_the_captured_version_is_recorded_once(db: Database) -> None:
    _, target = capturing_node(db)
    captures_db = DatabaseCaptures(db)
    manifest = Manifest(size=BLOCK_SIZE, image_sha256="a" * 64, blocks=("b" * 64,))
    assert captures_db.recorded(target) is None
    document = captures_db.record(target, "1b4e28ba-2fa1-11d2-883f-0016d3cca427", manifest)
    assert document == {"uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "image": "reference",
                        "version": "v1", "checksum": "a" * 64, "state": "available",
                        "disk_format": "raw", "image_type": "whole-disk", "boot_mode": "bios"}
    assert captures_db.recorded(target) == document
    with pytest.raises(Refused, match="meanwhile") as taken:
        captures_db.record(target, "2b4e28ba-2fa1-11d2-883f-0016d3cca427", manifest)
    assert taken.value.status == 409


def test_a_partition_capture_request_needs_its_boot_files_and_a_partition_number() -> None:
    from services.api.enclume.image_capture import _partition
    from services.common.exceptions import Invalid

    assert _partition({}) is None
    assert _partition({"image_type": "partition", "kernel": "vmlinuz",
                       "ramdisk": "initrd.img"}) == {"kernel": "vmlinuz",
                                                     "ramdisk": "initrd.img"}
    assert _partition({"image_type": "partition", "kernel": "k", "ramdisk": "r",
                       "root_partition": 2})["root_partition"] == 2
    for body, message in (
            ({"image_type": "partition", "kernel": "k"}, "needs a ramdisk"),
            ({"kernel": "k", "ramdisk": "r"}, "partition images only"),
            ({"root_partition": 1}, "partition captures only"),
            ({"image_type": "partition", "kernel": "k", "ramdisk": "r",
              "root_partition": 0}, "from 1 to 128"),
            ({"image_type": "partition", "kernel": "k", "ramdisk": "r",
              "root_partition": "2"}, "from 1 to 128"),
            ({"image_type": "qcow2"}, "image_type")):
        with pytest.raises(Invalid, match=message):
            _partition(body)


def test_a_capture_may_stop_at_a_size_of_a_whole_disk_only() -> None:
    from agent.capture_blocks import parse_params
    from agent.errors import BadParams

    url = "http://boot.example/image-captures/n"
    assert parse_params({"capture_url": url, "size": 8 * BLOCK_SIZE}).size == 8 * BLOCK_SIZE
    assert parse_params({"capture_url": url}).size is None
    for wrong in ({"size": 0}, {"size": "8"}, {"size": True},
                  {"size": BLOCK_SIZE, "image_type": "partition"}):
        with pytest.raises(BadParams, match="size must be"):
            parse_params({"capture_url": url, **wrong})
