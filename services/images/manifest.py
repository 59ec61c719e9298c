"""Block manifests: a disk image as fixed-size blocks, a sha256 each, zero blocks marked.

The manifest describes the raw (virtual) disk: for a qcow2 image, the disk it holds. Its
``image_sha256`` is the sha256 of that whole raw disk, which signs the block list off: a manifest
is only stored after both were computed from the same bytes. The document is JSON:

    {"format": "enclume-block-manifest/1", "block_size": 4194304, "size": <bytes>,
     "hash": "sha256", "image_sha256": "<hex>", "blocks": ["<hex>", null, ...]}

``null`` is an all-zero block. The last block may be shorter than ``block_size``; its hash covers
its real length. The agent parses the same document with its own stdlib-only copy
(``agent/block_manifest.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

FORMAT = "enclume-block-manifest/1"
BLOCK_SIZE = 4 * 1024 * 1024  # measured: docs/benchmarks.md "Block hashing"
HASH = "sha256"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ZEROS = bytes(BLOCK_SIZE)


class ManifestError(ValueError):
    """A manifest document that is not well-formed, or that does not match its image."""


@dataclass(frozen=True)
class Manifest:
    size: int
    image_sha256: str
    blocks: tuple[str | None, ...]  # sha256 hex per block, None for an all-zero block
    block_size: int = BLOCK_SIZE

    def block_length(self, index: int) -> int:
        return min(self.block_size, self.size - index * self.block_size)

    @property
    def data_bytes(self) -> int:
        """Bytes of the non-zero blocks: what a full restore transfers."""
        return sum(self.block_length(index) for index, digest in enumerate(self.blocks)
                   if digest is not None)

    def document(self) -> dict[str, object]:
        return {"format": FORMAT, "block_size": self.block_size, "size": self.size,
                "hash": HASH, "image_sha256": self.image_sha256, "blocks": list(self.blocks)}

    def to_json(self) -> bytes:
        return json.dumps(self.document(), separators=(",", ":")).encode()


def is_zero(block: bytes | bytearray | memoryview) -> bool:
    data = bytes(block) if isinstance(block, memoryview) else block
    return data == (_ZEROS if len(data) == BLOCK_SIZE else bytes(len(data)))


def parse(raw: bytes | str) -> Manifest:
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ManifestError(f"the manifest is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ManifestError(f"the manifest's format must be {FORMAT!r}")
    size, block_size = document.get("size"), document.get("block_size")
    if document.get("hash") != HASH:
        raise ManifestError(f"the manifest's hash must be {HASH!r}")
    if not all(isinstance(value, int) and not isinstance(value, bool) and value > 0
               for value in (size, block_size)):
        raise ManifestError("size and block_size must be positive integers")
    assert isinstance(size, int) and isinstance(block_size, int)
    blocks = document.get("blocks")
    if not isinstance(blocks, list) or len(blocks) != -(-size // block_size):
        raise ManifestError(f"a {size}-byte disk has {-(-size // block_size)} blocks of "
                            f"{block_size} bytes")
    if not all(block is None or (isinstance(block, str) and _HEX64.match(block))
               for block in blocks):
        raise ManifestError("each block is a sha256 in lower-case hex, or null (zeros)")
    image_sha256 = document.get("image_sha256")
    if not isinstance(image_sha256, str) or not _HEX64.match(image_sha256):
        raise ManifestError("image_sha256 must be a sha256 in lower-case hex")
    return Manifest(size=size, image_sha256=image_sha256, blocks=tuple(blocks),
                    block_size=block_size)


def _digest_block(block: bytes) -> str | None:
    return None if is_zero(block) else hashlib.sha256(block).hexdigest()


class ManifestBuilder:
    """Hashes blocks fed in order: each block on a pool thread (hashlib releases the GIL), the
    whole image on one more, so a disk is hashed about as fast as it is read."""

    def __init__(self, threads: int = 4,
                 on_block: Callable[[str | None, bytes], None] | None = None) -> None:
        self._on_block = on_block  # called on a pool thread with each digest and its block
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="manifest")
        self._in_flight: deque[tuple[Future[str | None], Future[None]]] = deque()
        self._max_in_flight = 2 * threads  # blocks held in memory at most
        self._whole = hashlib.sha256()
        self._whole_done: Future[None] | None = None
        self._blocks: list[Future[str | None]] = []
        self.size = 0

    def add(self, block: bytes) -> Future[str | None]:
        """Feed the next block (``BLOCK_SIZE`` bytes, the last one may be shorter); the future
        gives its digest (None: zeros)."""
        if self.size % BLOCK_SIZE:
            raise ValueError("only the last block may be shorter than the block size")
        previous = self._whole_done

        def whole() -> None:
            if previous is not None:
                previous.result()
            self._whole.update(block)

        self._whole_done = self._pool.submit(whole)
        future = self._pool.submit(self._digest, block)
        self._blocks.append(future)
        self.size += len(block)
        self._in_flight.append((future, self._whole_done))
        while len(self._in_flight) > self._max_in_flight:
            for done in self._in_flight.popleft():
                done.result()
        return future

    def _digest(self, block: bytes) -> str | None:
        digest = _digest_block(block)
        if self._on_block is not None:
            self._on_block(digest, block)
        return digest

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def finish(self) -> Manifest:
        try:
            if self.size == 0:
                raise ManifestError("an empty image has no manifest")
            if self._whole_done is not None:
                self._whole_done.result()
            return Manifest(size=self.size, image_sha256=self._whole.hexdigest(),
                            blocks=tuple(future.result() for future in self._blocks))
        finally:
            self._pool.shutdown()


def blocks_of(stream: BinaryIO) -> Iterator[bytes]:
    """``BLOCK_SIZE`` blocks of a binary file object, the last one shorter."""
    read = stream.read
    while True:
        block = bytearray()
        while len(block) < BLOCK_SIZE:
            chunk = read(BLOCK_SIZE - len(block))
            if not chunk:
                break
            block += chunk
        if not block:
            return
        yield bytes(block)
        if len(block) < BLOCK_SIZE:
            return


def compute(stream: BinaryIO) -> Manifest:
    """The manifest of the raw disk read from a binary file object."""
    builder = ManifestBuilder()
    try:
        for block in blocks_of(stream):
            builder.add(block)
    except BaseException:
        builder.abort()
        raise
    return builder.finish()
