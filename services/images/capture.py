"""Staged ingest of a captured disk: the agent sends a manifest, then only the blocks the store
lacks, then asks to commit; the version appears whole or not at all.

    ROOT/tmp/capture-<session>/blocks/<sha256>  blocks of the manifest: received ones (each
                                                checked against its hash on arrival) and hard
                                                links to the ones the store already has
    ROOT/tmp/capture-<session>/manifest.json    the manifest the agent computed
    ROOT/tmp/capture-<session>/.lock            held by each request on the session

A session is named after what it captures (the image and the version name), so a capture that
was interrupted (agent killed, network cut, PC off) and is started again finds the blocks it
had sent: they are not sent twice. Nothing is a version until ``commit``, which checks every
block is there, reads them in order to check the whole disk's sha256 against the manifest's
``image_sha256``, then makes the version as an ingest does (``ingest.commit_version``). A
session untouched for ``IDLE_S`` is removed by the store's garbage collection.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.common.file_lock import exclusive
from services.images import manifest as manifests
from services.images.errors import ChecksumMismatch, StoreError, StoreFull
from services.images.ingest import commit_version
from services.images.layout import Layout, check_version_id, lock_is_free
from services.images.manifest import Manifest

PREFIX = "capture-"
IDLE_S = 6 * 3600  # a capture session nobody touched for this long is garbage


class UnknownCapture(StoreError):
    """No capture session by that name, or it has no manifest yet."""


class CaptureIncomplete(StoreError):
    """A commit while blocks are still missing."""


class CaptureSession:
    def __init__(self, layout: Layout, max_bytes: int, session_id: str) -> None:
        self.layout, self.max_bytes = layout, max_bytes
        self.area = layout.tmp / f"{PREFIX}{check_version_id(session_id)}"
        self.blocks = self.area / "blocks"

    @contextmanager
    def _locked(self, create: bool = False) -> Iterator[None]:
        if create:
            self.blocks.mkdir(parents=True, exist_ok=True)
        elif not self.blocks.is_dir():
            raise UnknownCapture(f"no capture session {self.area.name}")
        with exclusive(self.area / ".lock"):
            os.utime(self.area)  # the garbage collection's idle clock
            yield

    def _manifest(self) -> Manifest:
        try:
            return manifests.parse((self.area / "manifest.json").read_bytes())
        except FileNotFoundError:
            raise UnknownCapture(f"capture session {self.area.name} has no manifest") from None

    def begin(self, manifest: Manifest) -> list[str]:
        """Keep the manifest (a restart may bring another one: blocks already received stay)
        and answer the blocks to send, in disk order; StoreFull at once if they cannot fit."""
        with self._locked(create=True):
            (self.area / "manifest.json").write_bytes(manifest.to_json())
            missing = self._missing(manifest, link=True)
            sizes = _sizes(manifest)
            needed = sum(sizes[digest] for digest in missing)
            room = self.max_bytes - self.layout.used_bytes()
            if needed > room:
                raise StoreFull(f"the image store is full: this capture needs {needed} more "
                                f"bytes, {max(room, 0)} are left of "
                                f"ENCLUME_IMAGE_STORE_MAX_BYTES ({self.max_bytes}); delete "
                                f"versions and collect garbage, or raise the limit")
            return missing

    def missing(self) -> list[str]:
        with self._locked():
            return self._missing(self._manifest(), link=False)

    def _missing(self, manifest: Manifest, link: bool) -> list[str]:
        """Blocks neither received nor in the store (those are hard-linked here, so that a
        garbage collection cannot take them away before the commit)."""
        missing: list[str] = []
        for digest in dict.fromkeys(block for block in manifest.blocks if block is not None):
            kept = self.blocks / digest
            if kept.exists():
                continue
            if link:
                try:
                    os.link(self.layout.block(digest), kept)
                    continue
                except FileNotFoundError:
                    pass
                except FileExistsError:
                    continue
            missing.append(digest)
        return missing

    def stage(self, digest: str, data: bytes) -> None:
        """Keep one block of the manifest, if its bytes have its hash."""
        with self._locked():
            manifest = self._manifest()
            if digest not in _sizes(manifest):
                raise StoreError(f"block {digest} is not in the capture's manifest")
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise ChecksumMismatch(f"the block received has sha256 {actual}, not {digest}: "
                                       f"not kept")
            partial = self.blocks / f".{digest}.part"
            partial.write_bytes(data)
            partial.rename(self.blocks / digest)

    def commit(self, version_id: str, source: dict[str, object]) -> Manifest:
        """The version, made of the manifest's blocks, if they are all here and the disk they
        make has the manifest's ``image_sha256``; the session is gone afterwards."""
        with self._locked():
            manifest = self._manifest()
            missing = self._missing(manifest, link=True)
            if missing:
                raise CaptureIncomplete(f"{len(missing)} blocks of the capture were not "
                                        f"received (first: {missing[0]})")
            actual = self._whole_sha256(manifest)
            if actual != manifest.image_sha256:
                self.abort()
                raise ChecksumMismatch(f"the captured disk's sha256 is {actual}, the manifest "
                                       f"says {manifest.image_sha256}: nothing was kept")
            commit_version(self.layout, self.area, version_id, manifest, source)
            shutil.rmtree(self.area, ignore_errors=True)
            return manifest

    def _whole_sha256(self, manifest: Manifest) -> str:
        whole = hashlib.sha256()
        zeros = bytes(manifest.block_size)
        for index, digest in enumerate(manifest.blocks):
            if digest is None:
                whole.update(zeros[:manifest.block_length(index)])
            else:
                whole.update((self.blocks / digest).read_bytes())
        return whole.hexdigest()

    def abort(self) -> None:
        shutil.rmtree(self.area, ignore_errors=True)


def _sizes(manifest: Manifest) -> dict[str, int]:
    return {digest: manifest.block_length(index)
            for index, digest in enumerate(manifest.blocks) if digest is not None}


def is_capture_area(area: Path) -> bool:
    return area.name.startswith(PREFIX)


def idle(area: Path, now: float | None = None) -> bool:
    """A capture session nobody touched for ``IDLE_S`` (and no request holds now)."""
    try:
        touched = area.stat().st_mtime
    except FileNotFoundError:
        return False
    return (now or time.time()) - touched > IDLE_S and lock_is_free(area / ".lock")
