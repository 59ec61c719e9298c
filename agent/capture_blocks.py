"""image.capture_blocks: a disk (or its root partition, ``capture_source``) read into the image
store as a new version, sending only the blocks the store lacks.

1. The disk is read and hashed block by block (``block_reader``: one thread per core, zero
   blocks found by a memcmp), giving its block manifest and its whole sha256.
2. The manifest goes to the boot service's capture session for this node, which answers the
   blocks the store lacks (and that an interrupted attempt did not already send).
3. Those blocks are read again, checked against the hash of the first pass (a disk that changed
   meanwhile fails the capture) and sent one by one, each checked again on arrival. Each goes
   zstd-compressed (``Content-Encoding: zstd``) when the ``zstandard`` module is here (the
   ramdisk has Debian's python3-zstandard) and that makes it smaller, plain otherwise.
4. The commit makes the version, whole, or nothing.

The agent proves itself with its token (``X-Agent-Token``), as on its own command endpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from agent.block_fetch import KeepAlive
from agent.block_reader import BlockReader
from agent.capture_source import WHOLE_DISK, CaptureSource, check_params, source
from agent.disks import Disk, DiskError, choose
from agent.download import check_url
from agent.errors import BadParams, CommandError

try:
    import zstandard
except ImportError:  # an agent without the module sends its blocks plain
    zstandard = None

LOG = logging.getLogger(__name__)
BLOCK_SIZE = 4 * 1024 * 1024  # the block manifest's (services/images/manifest.py)
FORMAT = "enclume-block-manifest/1"
TOKEN_HEADER = "X-Agent-Token"
ZSTD_LEVEL = 3  # zstd's default: see docs/images.md for the measurement


@dataclass(frozen=True)
class CaptureRequest:
    capture_url: str
    target_disk: str | None
    image_type: str = WHOLE_DISK
    root_partition: int | None = None
    size: int | None = None  # the first bytes only (a student's state: the version's size)


def parse_params(params: dict[str, Any]) -> CaptureRequest:
    target = params.get("target_disk")
    if target is not None and not isinstance(target, str):
        raise BadParams(f"target_disk must be a device path, got {target!r}")
    image_type, root_partition = check_params(params.get("image_type"),
                                              params.get("root_partition"))
    size = params.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1
                             or image_type != WHOLE_DISK):
        raise BadParams(f"size must be a number of bytes of a whole-disk capture, not {size!r}")
    return CaptureRequest(capture_url=check_url(params.get("capture_url"), "capture_url"),
                          target_disk=target, image_type=image_type,
                          root_partition=root_partition, size=size)


class CaptureClient:
    """The boot service's capture session of this node, on one keep-alive connection."""

    def __init__(self, url: str, token: str, timeout_s: float) -> None:
        self.url, self.token = url.rstrip("/"), token
        self.path = urllib.parse.urlsplit(self.url).path
        self._server = KeepAlive(self.url, timeout_s)

    def close(self) -> None:
        self._server.close()

    def call(self, method: str, path: str, body: bytes, content_type: str,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
        status, answer = self._server.request(
            method, self.path + path,
            {"Content-Type": content_type, TOKEN_HEADER: self.token, **(headers or {})},
            f"reach the capture service at {self.url}", body)
        if status >= 400:
            raise CommandError(f"the capture service refused {method} {path}: HTTP {status} "
                               f"{answer[:300].decode(errors='replace').strip()}")
        try:
            document = json.loads(answer) if answer else {}
        except ValueError:
            raise CommandError(f"the capture service answered {path} with something that is "
                               f"not JSON") from None
        return document if isinstance(document, dict) else {}


def wire_encoder() -> Callable[[memoryview], tuple[bytes, dict[str, str]]]:
    """What turns a block into a request body and its headers: zstd when the module is
    here and the block shrinks, the block itself otherwise."""
    if zstandard is None:
        return lambda block: (bytes(block), {})
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)

    def encode(block: memoryview) -> tuple[bytes, dict[str, str]]:
        packed = compressor.compress(block)
        if len(packed) < len(block):
            return packed, {"Content-Encoding": "zstd"}
        return bytes(block), {}

    return encode


class Capture:
    def __init__(self, disk: Disk, fd: int, client: CaptureClient,
                 on_progress: Callable[[int, int | None], None],
                 read_from: CaptureSource | None = None) -> None:
        """``read_from``: the part of ``disk`` captured (default: all of it)."""
        read_from = read_from or source(disk, WHOLE_DISK, None)
        self.source, self.client, self.on_progress = read_from, client, on_progress
        self.reader = BlockReader(fd, read_from.size, BLOCK_SIZE, read_from.base)
        self.done = 0
        self.total = read_from.size
        self.encode = wire_encoder()
        self.wire_bytes = 0

    def _read(self, index: int) -> memoryview:
        try:
            return self.reader.read(index)
        except OSError as exc:
            offset, _ = self.reader.span(index)
            raise DiskError(f"reading block {index} of {self.source.label} (offset {offset}) "
                            f"failed: {exc}; nothing was captured") from None

    def _digest(self, index: int) -> tuple[str | None, bytes | None]:
        block = self._read(index)
        if self.reader.is_zero(block):
            return None, None
        return hashlib.sha256(block).hexdigest(), bytes(block)

    def manifest(self) -> dict[str, Any]:
        whole = hashlib.sha256()
        count = -(-self.source.size // BLOCK_SIZE)
        blocks: list[str | None] = []
        for index, (digest, data) in self.reader.in_order(range(count), self._digest):
            length = self.reader.span(index)[1]
            whole.update(data if data is not None else self.reader.zeros[:length])
            blocks.append(digest)
            self.done += length
            self.on_progress(self.done, self.total)
        return {"format": FORMAT, "block_size": BLOCK_SIZE, "size": self.source.size,
                "hash": "sha256", "image_sha256": whole.hexdigest(), "blocks": blocks}

    def send(self, blocks: list[str | None], wanted: set[str]) -> tuple[int, int]:
        """Read the wanted blocks again and send each once; (blocks, bytes) sent."""
        sent = sent_bytes = 0
        for index, digest in enumerate(blocks):
            if digest not in wanted:
                continue
            wanted.discard(digest)
            data = self._read(index)
            if hashlib.sha256(data).hexdigest() != digest:
                raise CommandError(f"block {index} of {self.source.label} changed during the "
                                   f"capture: nothing was captured (is the disk in use?)")
            body, headers = self.encode(data)
            self.client.call("PUT", f"/blocks/{digest}", body, "application/octet-stream",
                             headers)
            self.wire_bytes += len(body)
            sent, sent_bytes = sent + 1, sent_bytes + len(data)
            self.done += len(data)
            self.on_progress(self.done, self.total)
        return sent, sent_bytes


def capture_blocks(request: CaptureRequest, disks: list[Disk], token: str | None,
                   timeout_s: float, on_progress: Callable[[int, int | None], None]
                   ) -> dict[str, Any]:
    if not token:
        raise CommandError("this agent has no token (no lookup yet): it cannot capture")
    disk = choose(disks, request.target_disk, 1)
    client = CaptureClient(request.capture_url, token, timeout_s)
    fd = disk.open(writable=False)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        read_from = source(disk, request.image_type, request.root_partition)
        if request.size is not None:
            if request.size > read_from.size:
                raise CommandError(f"{disk.path} has {disk.size} bytes, fewer than the "
                                   f"{request.size} to capture")
            read_from = replace(read_from, size=request.size)
        run = Capture(disk, fd, client, on_progress, read_from)
        manifest = run.manifest()
        blocks = manifest["blocks"]
        answer = client.call("POST", "/manifest", json.dumps(manifest).encode(),
                             "application/json")
        missing = answer.get("missing")
        if not isinstance(missing, list):
            raise CommandError("the capture service did not say which blocks it lacks")
        wanted = set(missing) & {digest for digest in blocks if digest is not None}
        run.total = read_from.size + sum(run.reader.span(index)[1] for index, digest
                                    in enumerate(blocks) if digest in wanted)
        sent, sent_bytes = run.send(blocks, set(wanted))
        committed = client.call("POST", "/commit", b"{}", "application/json")
        LOG.info("captured %s: %d blocks sent of %d", read_from.label, sent, len(blocks))
        return {"target_disk": disk.path, "image_type": request.image_type,
                "partition": read_from.partition, "image_size": read_from.size,
                "image_sha256": manifest["image_sha256"], "blocks": len(blocks),
                "zero_blocks": blocks.count(None), "sent_blocks": sent,
                "sent_bytes": sent_bytes, "wire_bytes": run.wire_bytes,
                "wire_encoding": "zstd" if zstandard is not None else "identity",
                "version": committed}
    finally:
        client.close()
        os.close(fd)
