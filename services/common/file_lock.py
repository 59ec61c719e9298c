"""An exclusive lock on a file (``flock``), held for a ``with`` block: between the processes of
one host (several API workers on one image store, migrations of one SQLite file, builds into
one cache)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(lock_path: Path | str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created when missing) for the block, waiting
    while another process holds it."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
