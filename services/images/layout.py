"""Where things are in the image store's directory, and its lock.

    ROOT/blocks/<2 hex>/<sha256>    one block's bytes (content-addressed, shared by versions)
    ROOT/versions/<id>/manifest.json  the version's block manifest, byte for byte as served
    ROOT/versions/<id>/source.json  what was ingested: format, size and sha256 of the upload
    ROOT/tmp/<ingest>/              an ingest in progress (its own lock held while it runs)
    ROOT/.lock                      held exclusively to commit, delete and collect garbage
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.common.file_lock import exclusive
from services.images.errors import StoreError

_VERSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_version_id(version_id: str) -> str:
    if not isinstance(version_id, str) or not _VERSION_ID.match(version_id):
        raise StoreError(f"invalid version id {version_id!r}: letters, digits, '.', '_', '-', "
                         f"at most 128, not starting with a punctuation mark")
    return version_id


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blocks = root / "blocks"
        self.versions = root / "versions"
        self.tmp = root / "tmp"
        for directory in (self.blocks, self.versions, self.tmp):
            directory.mkdir(parents=True, exist_ok=True)

    def block(self, digest: str) -> Path:
        return self.blocks / digest[:2] / digest

    def version(self, version_id: str) -> Path:
        return self.versions / check_version_id(version_id)

    def all_blocks(self) -> Iterator[Path]:
        for shard in self.blocks.iterdir():
            if shard.is_dir():
                yield from shard.iterdir()

    def used_bytes(self) -> int:
        """Bytes of the blocks and of ingests in progress (apparent sizes)."""
        total = 0
        for top in (self.blocks, self.tmp):
            for directory, _, files in os.walk(top):
                for name in files:
                    try:
                        total += os.stat(os.path.join(directory, name)).st_size
                    except FileNotFoundError:
                        continue
        return total

    @contextmanager
    def locked(self) -> Iterator[None]:
        with exclusive(self.root / ".lock"):
            yield


def lock_is_free(lock: Path) -> bool:
    """Nobody holds ``lock`` (a temp area's): its ingest or capture request is not running."""
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True
