"""One ingest: an image read once into new blocks in a private temp area, then committed.

Blocks the store already has are hard-linked into the temp area, so a garbage collection running
meanwhile cannot take them away; blocks it lacks are written there. Only when the checksum (and
the expected manifest, if one was given) matched are the new blocks renamed into place and the
version's directory renamed into ``versions/``; any failure removes the temp area, so a wrong
checksum or an interrupted upload keeps nothing.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path
from typing import BinaryIO

from services.images import manifest as manifests
from services.images.errors import BadImage, ChecksumMismatch, StoreFull, VersionExists
from services.images.layout import Layout
from services.images.manifest import Manifest, ManifestBuilder, ManifestError

COPY_CHUNK = 4 * 1024 * 1024
QEMU_IMG_TIMEOUT_S = 3600


class Ingest:
    def __init__(self, layout: Layout, max_bytes: int, version_id: str) -> None:
        self.layout, self.max_bytes, self.version_id = layout, max_bytes, version_id
        if layout.version(version_id).exists():
            raise VersionExists(f"version {version_id} is already in the image store")
        self.area = layout.tmp / f"{uuid.uuid4().hex}"
        self.area_blocks = self.area / "blocks"
        self.area_blocks.mkdir(parents=True)
        self._lock_handle = open(self.area / ".lock", "a")  # noqa: SIM115 - held until closed
        fcntl.flock(self._lock_handle, fcntl.LOCK_EX)
        self._budget_lock = threading.Lock()
        self._room = max_bytes - layout.used_bytes()
        self.new_bytes = 0

    def close(self) -> None:
        shutil.rmtree(self.area, ignore_errors=True)
        self._lock_handle.close()

    def _keep(self, digest: str | None, block: bytes) -> None:
        """On a hashing thread: make sure the temp area holds the block."""
        if digest is None:
            return
        kept = self.area_blocks / digest
        with self._budget_lock:
            if kept.exists():
                return
            try:
                os.link(self.layout.block(digest), kept)
                return
            except FileNotFoundError:
                pass
            except FileExistsError:
                return
            if self.new_bytes + len(block) > self._room:
                raise StoreFull(f"the image store is full: this image needs more than the "
                                f"{max(self._room, 0)} bytes left of "
                                f"ENCLUME_IMAGE_STORE_MAX_BYTES ({self.max_bytes}); delete "
                                f"versions and collect garbage, or raise the limit")
            self.new_bytes += len(block)
        partial = self.area_blocks / f".{digest}.part"
        partial.write_bytes(block)
        partial.rename(kept)

    def read_raw(self, stream: BinaryIO) -> Manifest:
        builder = ManifestBuilder(on_block=self._keep)
        try:
            for block in manifests.blocks_of(stream):
                builder.add(block)
        except BaseException:
            builder.abort()
            raise
        return builder.finish()

    def spool(self, stream: BinaryIO, expected_sha256: str) -> Path:
        """Copy a stream into the temp area, checking its sha256 (qcow2 needs a seekable file)."""
        path = self.area / "source"
        digest = hashlib.sha256()
        with open(path, "wb") as out:
            while chunk := stream.read(COPY_CHUNK):
                if out.tell() + len(chunk) > self._room:
                    raise StoreFull("the image store is full: no room to receive this image")
                digest.update(chunk)
                out.write(chunk)
        check_sha256(digest.hexdigest(), expected_sha256, "the upload")
        return path

    def qcow2_to_raw(self, path: Path) -> Path:
        check_qcow2(path)
        raw = self.area / "virtual-disk.raw"
        run_qemu_img(["convert", "-f", "qcow2", "-O", "raw", str(path), str(raw)])
        return raw

    def commit(self, manifest: Manifest, source: dict[str, object]) -> None:
        commit_version(self.layout, self.area, self.version_id, manifest, source)


def commit_version(layout: Layout, area: Path, version_id: str, manifest: Manifest,
                   source: dict[str, object]) -> None:
    """Make the version whose blocks are all in ``area/blocks`` (new ones, or hard links to the
    store's): its new blocks renamed into place and its directory into ``versions/``, under the
    store's lock."""
    version_dir = area / "version"
    version_dir.mkdir(exist_ok=True)
    (version_dir / "manifest.json").write_bytes(manifest.to_json())
    (version_dir / "source.json").write_text(json.dumps(source))
    with layout.locked():
        target = layout.version(version_id)
        if target.exists():
            raise VersionExists(f"version {version_id} is already in the image store")
        for digest in {block for block in manifest.blocks if block is not None}:
            final = layout.block(digest)
            if final.exists():
                continue
            final.parent.mkdir(exist_ok=True)
            os.rename(area / "blocks" / digest, final)
        try:
            os.rename(version_dir, target)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise VersionExists(f"version {version_id} is already in the image "
                                    f"store") from None
            raise


def check_sha256(actual: str, expected: str, what: str) -> None:
    if actual != expected.lower():
        raise ChecksumMismatch(f"checksum mismatch: the sha256 of {what} is {actual}, expected "
                               f"{expected}; nothing was kept")


def check_manifest(computed: Manifest, expected: Manifest | None) -> None:
    if expected is not None and expected != computed:
        raise ManifestError("the manifest does not match the image: refused, nothing was kept")


def run_qemu_img(args: list[str]) -> str:
    try:
        done = subprocess.run(["qemu-img", *args], capture_output=True, text=True,
                              timeout=QEMU_IMG_TIMEOUT_S)
    except FileNotFoundError:
        raise BadImage("qemu-img is missing (Debian package qemu-utils)") from None
    if done.returncode != 0:
        raise BadImage(f"qemu-img {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def check_qcow2(path: Path) -> None:
    """A qcow2 naming a backing or data file could make qemu-img read any file: refused."""
    info = json.loads(run_qemu_img(["info", "--output=json", "-f", "qcow2", str(path)]))
    data = (info.get("format-specific") or {}).get("data") or {}
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise BadImage("a qcow2 image with a backing file is refused")
    if data.get("data-file"):
        raise BadImage("a qcow2 image with an external data file is refused")
