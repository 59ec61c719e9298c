"""A reproducible cpio archive in the "newc" format, the format the kernel unpacks as initramfs.

Entries carry fixed owners and timestamps and are written in a fixed order, so the same inputs
always give the same bytes (and the same gzip, written with mtime 0).
"""

from __future__ import annotations

import gzip
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

NEWC_MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    path: str  # inside the archive, without a leading slash
    mode: int  # type and permission bits, as in stat.st_mode
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)  # (major, minor) of a device node


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def regular_file(path: str, data: bytes, executable: bool = False) -> Entry:
    return Entry(path, stat.S_IFREG | (0o755 if executable else 0o644), data)


def char_device(path: str, major: int, minor: int, permissions: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | permissions, rdev=(major, minor))


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _header(entry: Entry, inode: int, name: bytes) -> bytes:
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (inode, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0,
              entry.rdev[0], entry.rdev[1], len(name) + 1, 0)
    return NEWC_MAGIC + b"".join(f"{value:08x}".encode() for value in fields)


def write_newc(entries: list[Entry], out: BinaryIO) -> None:
    """Write `entries` (parents before children) and the trailer to `out`."""
    seen: set[str] = set()
    for inode, entry in enumerate([*entries, Entry(TRAILER, 0)], start=1):
        if entry.path.startswith("/") or entry.path in seen:
            raise ValueError(f"cpio entry path must be relative and unique: {entry.path!r}")
        seen.add(entry.path)
        name = entry.path.encode()
        header = _header(entry, 0 if entry.path == TRAILER else inode, name)
        out.write(header + name + b"\0" + _pad(len(header) + len(name) + 1))
        out.write(entry.data + _pad(len(entry.data)))


def write_gzipped_newc(entries: list[Entry], path: Path) -> None:
    with path.open("wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9
    ) as compressed:
        write_newc(entries, compressed)


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise ValueError("cpio archive ends in the middle of an entry")
    return data


def read_newc(source: BinaryIO) -> Iterator[Entry]:
    """The entries of a "newc" archive, in order, up to its trailer."""
    offset = 0
    while True:
        header = _read_exactly(source, 110)
        if header[:6] != NEWC_MAGIC:
            raise ValueError(f"not a newc cpio header at offset {offset}")
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, name_size = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        name = _read_exactly(source, name_size)[:-1].decode()
        _read_exactly(source, -(110 + name_size) % 4)
        data = _read_exactly(source, size)
        _read_exactly(source, -size % 4)
        offset += 110 + name_size + (-(110 + name_size) % 4) + size + (-size % 4)
        if name == TRAILER:
            return
        yield Entry(name, mode, data, rdev)


def unpack(source: BinaryIO, root: Path) -> None:
    """Unpack directories, files and symlinks of a newc archive under `root` (device nodes are
    skipped: the kernel's devtmpfs provides them)."""
    root.mkdir(parents=True, exist_ok=True)
    for entry in read_newc(source):
        target = root / entry.path
        if stat.S_ISDIR(entry.mode):
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(stat.S_IMODE(entry.mode))
        elif stat.S_ISLNK(entry.mode):
            target.symlink_to(entry.data.decode())
        elif stat.S_ISREG(entry.mode):
            target.write_bytes(entry.data)
            target.chmod(stat.S_IMODE(entry.mode))
