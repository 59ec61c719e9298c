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


class KeepAlive:
    """Requests to one http(s) server on one keep-alive connection, sent again on a new one
    (up to ATTEMPTS times) when the connection drops."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.parts = urllib.parse.urlsplit(url)
        if self.parts.scheme not in ("http", "https") or not self.parts.hostname:
            raise CommandError(f"{url!r} is not an http(s) URL")
        self.timeout_s = timeout_s
        self._connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method: str, path: str, headers: dict[str, str], what: str,
                body: bytes | None = None) -> tuple[int, bytes]:
        """``(status, body)``; CommandError "cannot <what>: <reason>" when no answer came."""
        for attempt in range(ATTEMPTS):
            try:
                if self._connection is None:
                    kind = (http.client.HTTPSConnection if self.parts.scheme == "https"
                            else http.client.HTTPConnection)
                    self._connection = kind(self.parts.hostname or "", self.parts.port,
                                            timeout=self.timeout_s)
                self._connection.request(method, path, body=body,
                                         headers={**headers, "User-Agent": "enclume-agent"})
                response = self._connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt + 1 == ATTEMPTS:
                    raise CommandError(f"cannot {what}: {exc}") from None
        raise AssertionError("unreachable")


class BlockFetcher:
    def __init__(self, disk_url: str, manifest: BlockManifest, timeout_s: float,
                 headers: dict[str, str] | None = None) -> None:
        parts = urllib.parse.urlsplit(disk_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError(f"disk_url must be an http(s) URL, got {disk_url!r}")
        self.url, self.manifest = disk_url, manifest
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.headers = dict(headers or {})  # the image token
        self.fetched_bytes = 0
        self.refetched_blocks = 0
        self.held: dict[int, bytes] = {}  # blocks already at hand (verified), not fetched
        self._server = KeepAlive(disk_url, timeout_s)

    def close(self) -> None:
        self._server.close()

    def read(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` of the image (any range, counted as fetched)."""
        status, body = self._server.request(
            "GET", self.path, {**self.headers, "Range": f"bytes={offset}-{offset + length - 1}"},
            f"read bytes {offset}+{length} of {self.url}")
        if status != 206 or len(body) != length:
            self.close()
            raise CommandError(f"reading bytes {offset}+{length} of {self.url}: HTTP "
                               f"{status}, {len(body)} bytes")
        self.fetched_bytes += length
        return body

    def fetch(self, indexes: list[int], write: Callable[[int, memoryview], None]) -> None:
        """Fetch the (sorted, non-zero) blocks and hand each verified one to ``write``."""
        at_hand = [index for index in indexes if index in self.held]
        for index in at_hand:
            write(index, memoryview(self.held.pop(index)))
        for run in runs(index for index in indexes if index not in at_hand):
            first, _ = self.manifest.span(run[0])
            last_offset, last_length = self.manifest.span(run[-1])
            body = memoryview(self.read(first, last_offset + last_length - first))
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
            block = self.read(offset, length)
            if hashlib.sha256(block).hexdigest() == self.manifest.blocks[index]:
                write(index, memoryview(block))
                return
        raise CommandError(f"block {index} of {self.url} failed its sha256 {ATTEMPTS} times")
