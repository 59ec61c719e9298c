"""The image store (services/images): manifests, ingest, sharing, refusals, quota, gc, reads."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from pathlib import Path

import pytest

from services.images import manifest as manifests
from services.images.errors import BadImage, ChecksumMismatch, StoreFull, UnknownVersion
from services.images.manifest import BLOCK_SIZE, ManifestError
from services.images.store import ImageStore

MiB = 1024 * 1024


def image(blocks: list[bytes | None], tail: int = 0) -> bytes:
    """Blocks of random data (None: zeros) and a short last block of ``tail`` random bytes."""
    parts = [bytes(BLOCK_SIZE) if block is None else block for block in blocks]
    return b"".join(parts) + os.urandom(tail)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store", max_bytes=64 * MiB)


def test_manifest_marks_zero_blocks_and_hashes_the_short_last_block() -> None:
    first = os.urandom(BLOCK_SIZE)
    data = image([first, None], tail=1000)
    manifest = manifests.compute(io.BytesIO(data))
    assert manifest.size == len(data)
    assert manifest.blocks == (sha(first), None, sha(data[2 * BLOCK_SIZE:]))
    assert manifest.image_sha256 == sha(data)
    assert manifest.data_bytes == BLOCK_SIZE + 1000
    assert manifests.parse(manifest.to_json()) == manifest


@pytest.mark.parametrize("change", [
    {"format": "other"}, {"hash": "md5"}, {"size": 0}, {"blocks": []},
    {"blocks": ["XYZ", None]}, {"image_sha256": "00"},
])
def test_malformed_manifests_are_refused(change: dict[str, object]) -> None:
    manifest = manifests.compute(io.BytesIO(image([os.urandom(BLOCK_SIZE), None])))
    document = {**manifest.document(), **change}
    import json
    with pytest.raises(ManifestError):
        manifests.parse(json.dumps(document))


def test_versions_share_their_common_blocks(store: ImageStore) -> None:
    common, old, new = (os.urandom(BLOCK_SIZE) for _ in range(3))
    first, second = image([common, old, None]), image([common, new, None])
    store.ingest_stream("v1", io.BytesIO(first), sha(first))
    store.ingest_stream("v2", io.BytesIO(second), sha(second))
    usage = store.usage()
    assert (usage.blocks, usage.versions) == (3, 2)
    assert usage.used_bytes == 3 * BLOCK_SIZE
    assert b"".join(store.read_range("v2", 0, len(second))) == second
    assert b"".join(store.read_range("v1", BLOCK_SIZE - 10, 20)) == first[BLOCK_SIZE - 10:
                                                                           BLOCK_SIZE + 10]
    assert store.read_block("v1", 2) == bytes(BLOCK_SIZE)
    assert store.verify("v1") == []


def test_a_wrong_checksum_keeps_nothing(store: ImageStore) -> None:
    data = image([os.urandom(BLOCK_SIZE)])
    with pytest.raises(ChecksumMismatch, match="nothing was kept"):
        store.ingest_stream("v1", io.BytesIO(data), sha(b"other"))
    assert store.versions() == []
    assert store.usage().used_bytes == 0
    assert list(store.layout.tmp.iterdir()) == []


def test_a_manifest_that_does_not_match_its_image_is_refused(store: ImageStore) -> None:
    data = image([os.urandom(BLOCK_SIZE), os.urandom(BLOCK_SIZE)])
    other = manifests.compute(io.BytesIO(image([os.urandom(BLOCK_SIZE), os.urandom(BLOCK_SIZE)])))
    with pytest.raises(ManifestError, match="does not match"):
        store.ingest_stream("v1", io.BytesIO(data), sha(data), expected_manifest=other)
    assert store.versions() == [] and store.usage().used_bytes == 0
    right = manifests.compute(io.BytesIO(data))
    assert store.ingest_stream("v1", io.BytesIO(data), sha(data), expected_manifest=right) == right


def test_a_full_store_refuses_with_a_clear_error_and_keeps_nothing(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store", max_bytes=3 * BLOCK_SIZE)
    small = image([os.urandom(BLOCK_SIZE), None, os.urandom(BLOCK_SIZE)])
    store.ingest_stream("small", io.BytesIO(small), sha(small))
    big = image([os.urandom(BLOCK_SIZE), os.urandom(BLOCK_SIZE)])
    with pytest.raises(StoreFull, match="ENCLUME_IMAGE_STORE_MAX_BYTES"):
        store.ingest_stream("big", io.BytesIO(big), sha(big))
    assert store.versions() == ["small"]
    assert store.usage().used_bytes == 2 * BLOCK_SIZE


def test_gc_removes_only_blocks_no_version_uses(store: ImageStore) -> None:
    shared, only_old = os.urandom(BLOCK_SIZE), os.urandom(BLOCK_SIZE)
    old, new = image([shared, only_old]), image([shared, None])
    store.ingest_stream("old", io.BytesIO(old), sha(old))
    store.ingest_stream("new", io.BytesIO(new), sha(new))
    assert store.gc().blocks == 0
    store.delete_version("old")
    with pytest.raises(UnknownVersion):
        store.manifest("old")
    collected = store.gc()
    assert (collected.blocks, collected.bytes) == (1, BLOCK_SIZE)
    assert b"".join(store.read_range("new", 0, len(new))) == new
    assert store.verify("new") == []


def test_gc_leaves_a_running_ingest_alone_and_clears_a_dead_one(store: ImageStore) -> None:
    from services.images.ingest import Ingest
    running = Ingest(store.layout, store.max_bytes, "running")
    dead = store.layout.tmp / "dead"
    (dead / "blocks").mkdir(parents=True)
    (dead / ".lock").touch()
    assert store.gc().stale_ingests == 1
    assert running.area.exists() and not dead.exists()
    running.close()


def test_qcow2_is_stored_as_its_virtual_disk(store: ImageStore, tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    data = image([os.urandom(BLOCK_SIZE), None, os.urandom(BLOCK_SIZE)])
    raw.write_bytes(data)
    qcow2 = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)],
                   check=True)
    manifest = store.ingest_file("q", qcow2, sha(qcow2.read_bytes()))
    assert manifest.image_sha256 == sha(data)
    assert store.source("q")["disk_format"] == "qcow2"
    assert b"".join(store.read_range("q", 0, len(data))) == data


def test_a_qcow2_with_a_backing_file_is_refused(store: ImageStore, tmp_path: Path) -> None:
    base = tmp_path / "base.raw"
    base.write_bytes(image([os.urandom(BLOCK_SIZE)]))
    child = tmp_path / "child.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base),
                    str(child)], check=True)
    with pytest.raises(BadImage, match="backing file"):
        store.ingest_file("c", child, sha(child.read_bytes()))
    assert store.versions() == []


def test_hostile_version_ids_are_refused(store: ImageStore) -> None:
    from services.images.errors import StoreError
    for version_id in ("../x", "", ".hidden", "a/b"):
        with pytest.raises(StoreError):
            store.manifest(version_id)


class _CutStream(io.RawIOBase):
    """An upload whose connection drops after ``limit`` bytes."""

    def __init__(self, data: bytes, limit: int) -> None:
        self.data, self.limit, self.position = data, limit, 0

    def read(self, size: int = -1) -> bytes:
        if self.position >= self.limit:
            raise ConnectionResetError("the client went away")
        chunk = self.data[self.position:min(self.position + size, self.limit)]
        self.position += len(chunk)
        return chunk


def test_an_interrupted_upload_keeps_nothing(store: ImageStore) -> None:
    data = image([os.urandom(BLOCK_SIZE), os.urandom(BLOCK_SIZE), os.urandom(BLOCK_SIZE)])
    with pytest.raises(ConnectionResetError):
        store.ingest_stream("v1", _CutStream(data, 2 * BLOCK_SIZE + 5), sha(data))
    assert store.versions() == [] and store.usage().used_bytes == 0
    assert list(store.layout.tmp.iterdir()) == []


def test_blocks_an_ingest_relies_on_survive_a_gc_meanwhile(store: ImageStore) -> None:
    from services.images.ingest import Ingest
    shared = os.urandom(BLOCK_SIZE)
    old = image([shared])
    store.ingest_stream("old", io.BytesIO(old), sha(old))
    ingest = Ingest(store.layout, store.max_bytes, "new")
    try:
        manifest = ingest.read_raw(io.BytesIO(old))  # finds the block already stored
        assert ingest.new_bytes == 0
        store.delete_version("old")
        assert store.gc().blocks == 1  # the store's copy goes; the ingest's link stays
        ingest.commit(manifest, {"disk_format": "raw"})
    finally:
        ingest.close()
    assert b"".join(store.read_range("new", 0, len(old))) == old
