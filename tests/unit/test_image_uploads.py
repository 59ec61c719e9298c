"""Resumable uploads into the image store (services/images/uploads.py), on a real directory."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from services.images.errors import ChecksumMismatch, StoreFull
from services.images.manifest import BLOCK_SIZE
from services.images.store import ImageStore
from services.images.uploads import UnknownUpload, UploadConflict, Uploads

DATA = os.urandom(BLOCK_SIZE) + bytes(BLOCK_SIZE) + os.urandom(100)
SUM = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def uploads(tmp_path: Path) -> Uploads:
    return Uploads(ImageStore(tmp_path / "store", max_bytes=4 * BLOCK_SIZE), timeout_s=60)


def send(uploads: Uploads, upload_id: str, offset: int, data: bytes) -> int:
    writer = uploads.writer(upload_id, offset, len(data))
    writer.write(data)
    return writer.close()


def test_pieces_at_the_offset_then_a_commit_make_the_version(uploads: Uploads) -> None:
    upload = uploads.start(len(DATA), SUM, {"disk_format": "raw"}, "admin")
    assert send(uploads, upload.id, 0, DATA[:1000]) == 1000
    with pytest.raises(UploadConflict, match="send from offset 1000"):
        uploads.writer(upload.id, 0)
    with pytest.raises(UploadConflict, match="more were sent"):
        uploads.writer(upload.id, 1000, len(DATA))
    with pytest.raises(UploadConflict, match="send the rest"):
        uploads.commit(upload.id, "v1")
    assert send(uploads, upload.id, 1000, DATA[1000:]) == len(DATA)
    uploads.commit(upload.id, "v1")
    assert b"".join(uploads.store.read_range("v1", 0, len(DATA))) == DATA
    with pytest.raises(UnknownUpload):
        uploads.get(upload.id)


def test_a_wrong_checksum_keeps_nothing(uploads: Uploads) -> None:
    upload = uploads.start(len(DATA), "0" * 64, {}, None)
    send(uploads, upload.id, 0, DATA)
    with pytest.raises(ChecksumMismatch):
        uploads.commit(upload.id, "v1")
    assert uploads.store.versions() == [] and list(uploads.store.layout.all_blocks()) == []
    assert list(uploads.root.iterdir()) == []


def test_announced_sizes_count_against_the_store_limit(uploads: Uploads) -> None:
    uploads.start(3 * BLOCK_SIZE, SUM, {}, None)
    assert uploads.pending_bytes() == 3 * BLOCK_SIZE
    with pytest.raises(StoreFull, match="image store is full"):
        uploads.start(2 * BLOCK_SIZE, SUM, {}, None)


def test_idle_uploads_are_collected_busy_ones_kept(uploads: Uploads) -> None:
    idle = uploads.start(10, SUM, {}, None)
    busy = uploads.start(10, SUM, {}, None)
    writer = uploads.writer(busy.id, 0)
    later = time.time() + 61
    assert uploads.collect(now=later) == 1
    with pytest.raises(UnknownUpload):
        uploads.get(idle.id)
    writer.close()
    assert uploads.get(busy.id).offset == 0
    assert uploads.collect(now=time.time()) == 0


@pytest.mark.parametrize("upload_id", ["../x", "a" * 31, "A" * 32, ""])
def test_ids_reach_nothing_outside_the_uploads(uploads: Uploads, upload_id: str) -> None:
    with pytest.raises(UnknownUpload):
        uploads.get(upload_id)
