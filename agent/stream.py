"""Streaming a raw image from HTTP onto a region of a disk while hashing it.

Three things matter here:
- speed: the body is read into a few large buffers by one thread, hashed by a second and written
  by a third at the same time (socket reads, ``hashlib`` and ``os.pwrite`` release the GIL);
- sparseness: when the region could be zeroed cheaply beforehand (a hole punched in a file,
  ``BLKZEROOUT`` offloaded by the device), all-zero chunks are not written at all;
- safety: the first MiB of the image (partition table, boot sector, file-system superblock) and
  its last chunk (a GPT backup header) are held back in memory and written only once the whole
  image arrived and its checksum matched, so an interrupted or corrupt download never leaves a
  bootable half image.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.disks import Disk, MiB, flush, start_writeback, write_all, zero_range
from agent.download import Download
from agent.errors import CommandError

CHUNK = 8 * MiB
BUFFERS = 6  # being read, being hashed and written, held back as the tail, spares
HEAD = 1 * MiB  # held back until the checksum matched
ZERO_BLOCK = 1 * MiB  # granularity of skipping zeros inside a chunk
_BLOCK_ZEROS = bytes(ZERO_BLOCK)


@dataclass
class Region:
    """Where the image goes: ``[offset, offset + length)`` of ``disk``."""
    disk: Disk
    fd: int
    offset: int
    length: int


@dataclass
class StreamResult:
    size: int
    digest: str
    skipped_bytes: int  # all-zero bytes not written because the region already read as zeros
    head: bytes
    tail_offset: int
    tail: bytes
    known_zero: bool  # the region read as zeros before: zero blocks of the tail need no write


class _Hasher:
    """Hashes chunks in order on its own thread, while the writer writes them."""

    def __init__(self, hasher: Any) -> None:
        self.hasher = hasher
        self.queue: queue.Queue[tuple[memoryview, threading.Event] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="image-hasher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            view, done = item
            self.hasher.update(view)
            done.set()

    def submit(self, view: memoryview) -> threading.Event:
        done = threading.Event()
        self.queue.put((view, done))
        return done

    def close(self) -> str:
        self.queue.put(None)
        self.thread.join()
        return str(self.hasher.hexdigest())


def _reader(download: Download, free: queue.Queue[bytearray],
            full: queue.Queue[tuple[bytearray, int] | BaseException | None],
            stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            buffer = free.get()
            count = download.readinto(memoryview(buffer))
            if count == 0:
                free.put(buffer)
                full.put(None)
                return
            full.put((buffer, count))
    except BaseException as exc:  # handed to the writer, which raises it
        full.put(exc)


def stream(download: Download, region: Region, hasher: Any,
           on_progress: Callable[[int], None]) -> StreamResult:
    """Copy the body onto ``region``; the caller verifies the digest and then writes
    ``head`` at ``region.offset`` and ``tail`` at ``tail_offset`` (see `commit`)."""
    if download.total is not None and download.total > region.length:
        raise CommandError(f"the image ({download.total} bytes) is larger than the space for it "
                           f"on {region.disk.path} ({region.length} bytes)")
    known_zero = zero_range(region.fd, region.disk, region.offset,
                            download.total if download.total is not None else region.length,
                            cheap_only=True)
    free: queue.Queue[bytearray] = queue.Queue()
    full: queue.Queue[tuple[bytearray, int] | BaseException | None] = queue.Queue()
    for _ in range(BUFFERS):
        free.put(bytearray(CHUNK))
    zeros = bytes(CHUNK)
    stop = threading.Event()
    thread = threading.Thread(target=_reader, args=(download, free, full, stop),
                              name="image-reader", daemon=True)
    thread.start()
    hashing = _Hasher(hasher)
    position = 0
    skipped = 0
    head = b""
    # the latest chunk, held back as the tail: (image offset, buffer, low, high), and the
    # event its hash is done
    pending: tuple[int, bytearray, int, int] | None = None
    pending_hashed = threading.Event()
    try:
        while True:
            item = full.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            buffer, count = item
            if position + count > region.length:
                raise CommandError(f"the image is larger than the space for it on "
                                   f"{region.disk.path} ({region.length} bytes)")
            low = 0
            if position < HEAD:
                low = min(HEAD - position, count)
                head += bytes(buffer[:low])
            hashed = hashing.submit(memoryview(buffer)[:count])
            if pending is not None:
                skipped += _write(region, known_zero, zeros, *pending)
                pending_hashed.wait()
                free.put(pending[1])
            pending, pending_hashed = (position + low, buffer, low, count), hashed
            position += count
            on_progress(position)
    finally:
        stop.set()
        # Unblock the reader if it waits for a buffer, then let it finish.
        free.put(bytearray(0))
        thread.join(timeout=5)
        digest = hashing.close()
    if download.total is not None and position != download.total:
        raise CommandError(f"short download of {download.url}: got {position} of "
                           f"{download.total} bytes")
    tail_offset, tail = (pending[0], bytes(pending[1][pending[2]:pending[3]])) if pending \
        else (position, b"")
    return StreamResult(size=position, digest=digest, skipped_bytes=skipped,
                        head=head, tail_offset=tail_offset, tail=tail, known_zero=known_zero)


def data_runs(buffer: bytes | bytearray, low: int, high: int,
              zeros: bytes) -> list[tuple[int, int]]:
    """The ranges of ``buffer[low:high]`` that are not all zeros, in ZERO_BLOCK steps, merged.

    ``startswith`` is a memcmp in place (no copy; comparing memoryviews would go element by
    element, 50x slower); a block whose first byte is not zero is data without any comparison.
    """
    if buffer.startswith(zeros[:high - low] if high - low < len(zeros) else zeros, low, high):
        return []
    runs: list[tuple[int, int]] = []
    for block in range(low, high, ZERO_BLOCK):
        end = min(block + ZERO_BLOCK, high)
        if buffer[block] == 0 and buffer.startswith(
                _BLOCK_ZEROS if end - block == ZERO_BLOCK else zeros[:end - block], block, end):
            continue
        if runs and runs[-1][1] == block:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((block, end))
    return runs


def _write(region: Region, known_zero: bool, zeros: bytes, start: int, buffer: bytearray,
           low: int, high: int) -> int:
    """Write ``buffer[low:high]`` at image offset ``start``, leaving out all-zero blocks when the
    region already reads as zeros; returns the number of bytes left out."""
    if high <= low:
        return 0
    runs = data_runs(buffer, low, high, zeros) if known_zero else [(low, high)]
    view = memoryview(buffer)
    for run_low, run_high in runs:
        write_all(region.fd, view[run_low:run_high], region.offset + start + run_low - low,
                  region.disk)
    if runs:
        start_writeback(region.fd, region.offset + start, high - low)
    return (high - low) - sum(run_high - run_low for run_low, run_high in runs)


def commit(region: Region, result: StreamResult) -> None:
    """Write the held-back tail and head, after the data is on the disk."""
    flush(region.fd, region.disk)
    tail = bytearray(result.tail)
    result.skipped_bytes += _write(region, result.known_zero, bytes(CHUNK), result.tail_offset,
                                   tail, 0, len(tail))
    write_all(region.fd, result.head, region.offset, region.disk)
    flush(region.fd, region.disk)
