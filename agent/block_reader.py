"""Reading a disk block by block on more threads than cores (hashlib and preadv release the GIL),
with the results handed back in disk order: what a delta restore compares and a capture hashes.

A pass over the disk (``in_order``) reads with O_DIRECT where the disk allows it: the blocks go
from the disk straight into each thread's page-aligned buffer, with no copy out of the page cache
and no page cache to fill and evict (CPU the hashing needs: on two cores it is CPU-bound), and
the reads see the disk, not the cache. One thread more than cores keeps a read in flight while
every core hashes (O_DIRECT has no read-ahead). Where O_DIRECT is refused (tmpfs, some file
systems) or a block is not aligned for it, the block is read through the page cache.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
DIRECT_ALIGNMENT = 4096  # O_DIRECT: offset and length multiples of the logical block (≤ 4096)


def reopen_direct(fd: int) -> int | None:
    """A second, read-only descriptor of ``fd``'s file with O_DIRECT; None when refused."""
    try:
        return os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError:
        return None


class BlockReader:
    """``size`` bytes of the file from ``base`` on (a partition of a disk) as blocks."""

    def __init__(self, fd: int, size: int, block_size: int, base: int = 0,
                 direct: bool = True) -> None:
        self.fd, self.size, self.block_size, self.base = fd, size, block_size, base
        self.threads = (os.cpu_count() or 1) + 1
        self.zeros = bytes(block_size)
        self.direct = direct  # try O_DIRECT in passes
        self._direct_fd: int | None = None  # open during a pass that could get it
        self._buffers = threading.local()

    def span(self, index: int) -> tuple[int, int]:
        """``(offset, length)`` of block ``index`` (the last one may be shorter)."""
        offset = index * self.block_size
        return offset, min(self.block_size, self.size - offset)

    def _buffer(self) -> memoryview:
        buffer = getattr(self._buffers, "block", None)  # one per thread, reused
        if buffer is None:  # mmap: page-aligned, as O_DIRECT wants
            buffer = self._buffers.block = memoryview(mmap.mmap(-1, self.block_size))
        return buffer

    def _read_direct(self, into: memoryview, position: int) -> int | None:
        """Bytes read with O_DIRECT, None when it cannot be used for this block."""
        direct = self._direct_fd
        if direct is None or position % DIRECT_ALIGNMENT or len(into) % DIRECT_ALIGNMENT:
            return None
        try:
            return os.preadv(direct, [into], position)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # refused after all: the pass goes on cached
                self._direct_fd = None  # (closed when the pass ends: other threads hold it)
            return None  # an I/O error: the page cache path meets it again

    def read(self, index: int) -> memoryview:
        """Block ``index`` in this thread's buffer (valid until this thread's next read);
        OSError if the disk cannot give it whole."""
        offset, length = self.span(index)
        block = self._buffer()[:length]
        position = self.base + offset
        count = self._read_direct(block, position)
        if count != length:
            count = os.preadv(self.fd, [block], position)
        if count != length:
            raise OSError(f"short read: {count} of {length} bytes at offset {offset}")
        return block

    def is_zero(self, block: memoryview) -> bool:
        # a memcmp in place: the zero block starts with ``block`` only if it is all zeros
        return len(block) <= len(self.zeros) and self.zeros.startswith(block)

    def in_order(self, indexes: Iterable[int], work: Callable[[int], T]
                 ) -> Iterator[tuple[int, T]]:
        """``(index, work(index))`` for each index, in order, ``work`` running on the pool."""
        window: deque[tuple[int, Future[T]]] = deque()
        opened = self._direct_fd = reopen_direct(self.fd) if self.direct else None
        try:
            with ThreadPoolExecutor(self.threads, thread_name_prefix="block-hash") as pool:
                for index in indexes:
                    window.append((index, pool.submit(work, index)))
                    while len(window) > 2 * self.threads or (window and window[0][1].done()):
                        first, future = window.popleft()
                        yield first, future.result()
                while window:
                    first, future = window.popleft()
                    yield first, future.result()
        finally:
            self._direct_fd = None
            if opened is not None:
                os.close(opened)
