"""The image store's Python API: ingest, manifests, range reads, delete, garbage collection.

Versions are immutable block manifests over content-addressed blocks (``layout.py``), so two
versions of one image share every block they have in common. The catalogue and the API call
this; the boot service serves range reads of it (``services/boot/image_blocks.py``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from services.images import capture as captures
from services.images import manifest as manifests
from services.images.errors import BadImage, StoreError, UnknownVersion
from services.images.ingest import Ingest, check_manifest, check_sha256
from services.images.layout import Layout, lock_is_free
from services.images.manifest import Manifest

FORMATS = ("raw", "qcow2")
QCOW2_MAGIC = b"QFI\xfb"
FRESH_AREA_S = 60


@dataclass(frozen=True)
class Usage:
    used_bytes: int
    max_bytes: int
    blocks: int
    versions: int


@dataclass(frozen=True)
class Collected:
    blocks: int
    bytes: int
    stale_ingests: int


class ImageStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.layout = Layout(root)
        self.max_bytes = max_bytes
        self._manifests: dict[str, tuple[Manifest, bytes]] = {}  # versions never change
        self._cache_lock = threading.Lock()

    # ingest -------------------------------------------------------------------------------

    def ingest_file(self, version_id: str, path: Path, sha256: str,
                    disk_format: str | None = None,
                    expected_manifest: Manifest | None = None) -> Manifest:
        """Store the image at ``path`` (raw or qcow2; None: read from its header) as
        ``version_id``, if its sha256 is ``sha256``; a qcow2 is stored as its virtual disk."""
        with open(path, "rb") as source:
            return self.ingest_stream(version_id, source, sha256, disk_format, expected_manifest)

    def ingest_stream(self, version_id: str, stream: BinaryIO, sha256: str,
                      disk_format: str | None = None,
                      expected_manifest: Manifest | None = None) -> Manifest:
        """Like ``ingest_file`` from a binary stream (an upload); a raw stream is hashed and cut
        into blocks as it arrives, a qcow2 is received into the temp area first."""
        if disk_format is not None and disk_format not in FORMATS:
            raise BadImage(f"disk format must be one of {', '.join(FORMATS)}, got {disk_format!r}")
        ingest = Ingest(self.layout, self.max_bytes, version_id)
        try:
            head = _peek(stream)
            qcow2 = disk_format == "qcow2" or (disk_format is None and
                                               head.startswith(QCOW2_MAGIC))
            if qcow2:
                spooled = ingest.spool(_Prefixed(head, stream), sha256)
                raw = ingest.qcow2_to_raw(spooled)
                source_size = spooled.stat().st_size
                spooled.unlink()
                with open(raw, "rb") as disk:
                    manifest = ingest.read_raw(disk)
            else:
                manifest = ingest.read_raw(_Prefixed(head, stream))
                check_sha256(manifest.image_sha256, sha256, "the upload")
                source_size = manifest.size
            check_manifest(manifest, expected_manifest)
            ingest.commit(manifest, {"disk_format": "qcow2" if qcow2 else "raw",
                                     "size": source_size, "sha256": sha256.lower()})
        finally:
            ingest.close()
        return manifest

    def capture(self, session_id: str) -> captures.CaptureSession:
        """A capture's staged ingest (``capture.py``): begun, fed blocks, then committed."""
        return captures.CaptureSession(self.layout, self.max_bytes, session_id)

    # reading ------------------------------------------------------------------------------

    def versions(self) -> list[str]:
        return sorted(entry.name for entry in self.layout.versions.iterdir() if entry.is_dir())

    def manifest_json(self, version_id: str) -> bytes:
        """The manifest document exactly as stored and served (its sha256 is stable)."""
        with self._cache_lock:
            cached = self._manifests.get(version_id)
        if cached is None:
            try:
                raw = (self.layout.version(version_id) / "manifest.json").read_bytes()
            except FileNotFoundError:
                raise UnknownVersion(f"no version {version_id} in the image store") from None
            cached = (manifests.parse(raw), raw)
            with self._cache_lock:
                self._manifests[version_id] = cached
        return cached[1]

    def manifest(self, version_id: str) -> Manifest:
        self.manifest_json(version_id)
        return self._manifests[version_id][0]

    def manifest_sha256(self, version_id: str) -> str:
        """What the agent is told to expect of the manifest it downloads."""
        return hashlib.sha256(self.manifest_json(version_id)).hexdigest()

    def source(self, version_id: str) -> dict[str, object]:
        self.manifest(version_id)
        loaded: dict[str, object] = json.loads(
            (self.layout.version(version_id) / "source.json").read_text())
        return loaded

    def read_block(self, version_id: str, index: int) -> bytes:
        manifest = self.manifest(version_id)
        if not 0 <= index < len(manifest.blocks):
            raise StoreError(f"version {version_id} has no block {index}")
        digest = manifest.blocks[index]
        if digest is None:
            return bytes(manifest.block_length(index))
        try:
            return self.layout.block(digest).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"block {digest} of version {version_id} is missing from the "
                             f"image store") from None

    def read_range(self, version_id: str, offset: int, length: int) -> Iterator[bytes]:
        """The bytes ``[offset, offset + length)`` of the version's raw disk, in pieces of at
        most one block."""
        manifest = self.manifest(version_id)
        if offset < 0 or length < 0 or offset + length > manifest.size:
            raise StoreError(f"range {offset}+{length} is outside the {manifest.size}-byte disk")
        end = offset + length
        size = manifest.block_size
        while offset < end:
            index, within = divmod(offset, size)
            count = min(size - within, end - offset)
            digest = manifest.blocks[index]
            if digest is None:
                yield bytes(count)
            else:
                yield _pread(self.layout.block(digest), within, count, version_id)
            offset += count

    def verify(self, version_id: str) -> list[int]:
        """Indexes of the version's blocks whose stored bytes do not match their hash."""
        manifest = self.manifest(version_id)
        bad = []
        for index, digest in enumerate(manifest.blocks):
            if digest is None:
                continue
            try:
                data = self.layout.block(digest).read_bytes()
            except FileNotFoundError:
                bad.append(index)
                continue
            if hashlib.sha256(data).hexdigest() != digest:
                bad.append(index)
        return bad

    # removing -----------------------------------------------------------------------------

    def delete_version(self, version_id: str) -> None:
        """Forget the version; its blocks go at the next garbage collection."""
        with self.layout.locked():
            directory = self.layout.version(version_id)
            if not directory.is_dir():
                raise UnknownVersion(f"no version {version_id} in the image store")
            doomed = self.layout.tmp / f"deleted-{uuid.uuid4().hex}"
            os.rename(directory, doomed)
        with self._cache_lock:
            self._manifests.pop(version_id, None)
        shutil.rmtree(doomed, ignore_errors=True)

    def gc(self) -> Collected:
        """Remove blocks no version uses, temp areas of ingests that died and capture sessions
        left idle."""
        removed = freed = stale = 0
        with self.layout.locked():
            used: set[str] = set()
            for version_id in self.versions():
                used.update(block for block in self.manifest(version_id).blocks if block)
            for path in list(self.layout.all_blocks()):
                if path.name not in used:
                    freed += path.stat().st_size
                    path.unlink()
                    removed += 1
            for area in self.layout.tmp.iterdir():
                if captures.idle(area) if captures.is_capture_area(area) else _abandoned(area):
                    shutil.rmtree(area, ignore_errors=True)
                    stale += 1
        return Collected(blocks=removed, bytes=freed, stale_ingests=stale)

    def usage(self) -> Usage:
        return Usage(used_bytes=self.layout.used_bytes(), max_bytes=self.max_bytes,
                     blocks=sum(1 for _ in self.layout.all_blocks()),
                     versions=len(self.versions()))


def _pread(path: Path, offset: int, count: int, version_id: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise StoreError(f"block {path.name} of version {version_id} is missing from the "
                         f"image store") from None
    try:
        return os.pread(fd, count, offset)
    finally:
        os.close(fd)


def _abandoned(area: Path) -> bool:
    """A temp area whose ingest no longer holds its lock (or a deleted version's leftovers)."""
    lock = area / ".lock"
    if not lock.exists():  # a deleted version's leftovers, or an ingest being set up right now
        return time.time() - area.stat().st_mtime > FRESH_AREA_S
    return lock_is_free(lock)


def _peek(stream: BinaryIO) -> bytes:
    return stream.read(len(QCOW2_MAGIC))


class _Prefixed(io.RawIOBase):
    """A stream with the bytes already peeked put back in front."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self.head, self.stream = head, stream

    def read(self, size: int = -1) -> bytes:
        if self.head:
            cut = len(self.head) if size < 0 else size
            data, self.head = self.head[:cut], self.head[cut:]
            return data
        return self.stream.read(size)
