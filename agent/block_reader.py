"""Reading a disk block by block on one thread per core (hashlib and preadv release the GIL),
with the results handed back in disk order: what a delta restore compares and a capture hashes.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class BlockReader:
    """``size`` bytes of the file from ``base`` on (a partition of a disk) as blocks."""

    def __init__(self, fd: int, size: int, block_size: int, base: int = 0) -> None:
        self.fd, self.size, self.block_size, self.base = fd, size, block_size, base
        self.threads = os.cpu_count() or 1
        self.zeros = bytes(block_size)
        self._buffers = threading.local()

    def span(self, index: int) -> tuple[int, int]:
        """``(offset, length)`` of block ``index`` (the last one may be shorter)."""
        offset = index * self.block_size
        return offset, min(self.block_size, self.size - offset)

    def read(self, index: int) -> memoryview:
        """Block ``index`` in this thread's buffer (valid until this thread's next read);
        OSError if the disk cannot give it whole."""
        offset, length = self.span(index)
        buffer = getattr(self._buffers, "block", None)  # one per thread, reused
        if buffer is None:
            buffer = self._buffers.block = bytearray(self.block_size)
        count = os.preadv(self.fd, [memoryview(buffer)[:length]], self.base + offset)
        if count != length:
            raise OSError(f"short read: {count} of {length} bytes at offset {offset}")
        return memoryview(buffer)[:length]

    def is_zero(self, block: memoryview) -> bool:
        length = len(block)
        buffer = block.obj
        assert isinstance(buffer, bytearray)
        # startswith is a memcmp in place (see stream.data_runs)
        return buffer.startswith(self.zeros[:length] if length < len(self.zeros)
                                 else self.zeros, 0, length)

    def in_order(self, indexes: Iterable[int], work: Callable[[int], T]
                 ) -> Iterator[tuple[int, T]]:
        """``(index, work(index))`` for each index, in order, ``work`` running on the pool."""
        window: deque[tuple[int, Future[T]]] = deque()
        with ThreadPoolExecutor(self.threads, thread_name_prefix="block-hash") as pool:
            for index in indexes:
                window.append((index, pool.submit(work, index)))
                while len(window) > 2 * self.threads or (window and window[0][1].done()):
                    first, future = window.popleft()
                    yield first, future.result()
            while window:
                first, future = window.popleft()
                yield first, future.result()
