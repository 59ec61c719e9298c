"""Fetching blocks of a disk image by HTTP range reads on one keep-alive connection.

Adjacent blocks are asked for in one range (up to MAX_RUN_BLOCKS); each block is checked against
its hash as it arrives, so a corrupt block is fetched again alone, not the whole run.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.parse
from collections.abc import Callable, Iterable, Iterator

from agent.block_manifest import BlockManifest
from agent.errors import CommandError

MAX_RUN_BLOCKS = 16
ATTEMPTS = 3  # per block, and per request after a dropped connection


def runs(indexes: Iterable[int], limit: int = MAX_RUN_BLOCKS) -> Iterator[list[int]]:
    """Sorted block indexes grouped into runs of consecutive ones, ``limit`` long at most."""
    run: list[int] = []
    for index in indexes:
        if run and (index != run[-1] + 1 or len(run) == limit):
            yield run
            run = []
        run.append(index)
    if run:
        yield run


class BlockFetcher:
    def __init__(self, disk_url: str, manifest: BlockManifest, timeout_s: float,
                 headers: dict[str, str] | None = None) -> None:
        parts = urllib.parse.urlsplit(disk_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError(f"disk_url must be an http(s) URL, got {disk_url!r}")
        self.url, self.parts, self.manifest, self.timeout_s = disk_url, parts, manifest, timeout_s
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.headers = {"User-Agent": "enclume-agent", **(headers or {})}  # the image token
        self.fetched_bytes = 0
        self.refetched_blocks = 0
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = (http.client.HTTPSConnection if self.parts.scheme == "https"
                    else http.client.HTTPConnection)
            self._connection = kind(self.parts.hostname or "", self.parts.port,
                                    timeout=self.timeout_s)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _get(self, offset: int, length: int) -> bytes:
        for attempt in range(ATTEMPTS):
            try:
                connection = self._connect()
                connection.request("GET", self.path, headers={
                    **self.headers, "Range": f"bytes={offset}-{offset + length - 1}"})
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt + 1 == ATTEMPTS:
                    raise CommandError(f"cannot read bytes {offset}+{length} of {self.url}: "
                                       f"{exc}") from None
                continue
            if response.status != 206 or len(body) != length:
                self.close()
                raise CommandError(f"reading bytes {offset}+{length} of {self.url}: HTTP "
                                   f"{response.status}, {len(body)} bytes")
            self.fetched_bytes += length
            return body
        raise AssertionError("unreachable")

    def fetch(self, indexes: list[int], write: Callable[[int, memoryview], None]) -> None:
        """Fetch the (sorted, non-zero) blocks and hand each verified one to ``write``."""
        for run in runs(indexes):
            first, _ = self.manifest.span(run[0])
            last_offset, last_length = self.manifest.span(run[-1])
            body = memoryview(self._get(first, last_offset + last_length - first))
            for index in run:
                offset, length = self.manifest.span(index)
                block = body[offset - first:offset - first + length]
                if hashlib.sha256(block).hexdigest() == self.manifest.blocks[index]:
                    write(index, block)
                else:
                    self._refetch(index, write)

    def _refetch(self, index: int, write: Callable[[int, memoryview], None]) -> None:
        offset, length = self.manifest.span(index)
        for _ in range(ATTEMPTS):
            self.refetched_blocks += 1
            block = self._get(offset, length)
            if hashlib.sha256(block).hexdigest() == self.manifest.blocks[index]:
                write(index, memoryview(block))
                return
        raise CommandError(f"block {index} of {self.url} failed its sha256 {ATTEMPTS} times")
