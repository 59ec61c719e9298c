"""Blocks read back and checked while a stream still writes the disk.

A multicast stream comes at the sender's rate, far below what a PC's CPU and disk do: each block
the receiver wrote is flushed, dropped from the page cache and read back from the disk by a
thread of its own, then checked against the manifest while the next blocks arrive. The repair
afterwards (``restore_blocks`` with ``verified``) then neither hashes nor reads back the blocks
found good here: for a PC that lost nothing, nothing is left to check once the stream ends.
"""

from __future__ import annotations

import logging
import os
import queue
import threading

from agent.block_manifest import BlockManifest
from agent.block_reader import BlockReader
from agent.disks import Disk, flush
from agent.errors import CommandError

LOG = logging.getLogger(__name__)


class StreamVerifier:
    """``written(index)`` after each block is on the disk; ``finish()`` gives the good ones."""

    def __init__(self, fd: int, disk: Disk, manifest: BlockManifest) -> None:
        self.fd, self.disk, self.manifest = fd, disk, manifest
        self.reader = BlockReader(fd, manifest.size, manifest.block_size)
        self.good: set[int] = set()
        self._pending: queue.Queue[int | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="stream-verify", daemon=True)
        self._thread.start()

    def written(self, index: int) -> None:
        self._pending.put(index)

    def finish(self) -> frozenset[int]:
        """Waits for the blocks written so far to be checked; the ones that matched."""
        self._pending.put(None)
        self._thread.join()
        return frozenset(self.good)

    def _run(self) -> None:
        while (index := self._pending.get()) is not None:
            try:
                if self._reads_back(index):
                    self.good.add(index)
            except (OSError, CommandError) as exc:  # the repair reads and checks it again
                LOG.warning("reading back block %d of %s failed: %s", index, self.disk.path,
                            exc)

    def _reads_back(self, index: int) -> bool:
        return self.manifest.matches(index, read_back(self.fd, self.disk, self.reader,
                                                      self.manifest, index))


def read_back(fd: int, disk: Disk, reader: BlockReader, manifest: BlockManifest,
              index: int) -> memoryview:
    """Block ``index`` as the disk holds it (flushed, dropped from the page cache, read), in
    the reader's buffer."""
    offset, length = manifest.span(index)
    flush(fd, disk)
    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)  # the disk, not the cache
    return reader.read(index)
