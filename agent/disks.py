"""Disks the agent may write: block devices of /sys/block, or files standing in for them.

Both kinds go through one `Disk` type, so tests on file-backed disks run the same code as a
machine. Zeroing a range is the one place they differ: a file gets a hole punched
(``fallocate(PUNCH_HOLE)``), a block device ``BLKZEROOUT`` when it offloads write-zeroes,
else plain writes of zeros.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from agent.errors import CommandError

MiB = 1024 * 1024
SECTOR = 512
SYS_BLOCK = Path("/sys/block")
SKIPPED_PREFIXES = ("ram", "loop", "sr", "zram", "fd")
BLKGETSIZE64 = 0x80081272
BLKRRPART = 0x125F
BLKZEROOUT = 0x127F
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
ZERO_WRITE_CHUNK = 4 * MiB

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
_libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong,
                                  ctypes.c_uint]
SYNC_FILE_RANGE_WRITE = 2


class DiskError(CommandError):
    """A disk could not be read, written or found; the message names the disk."""


@dataclass(frozen=True)
class Disk:
    path: str
    size: int
    is_block: bool
    model: str | None = None
    serial: str | None = None
    rotational: bool = False
    offloads_zeroing: bool = False  # BLKZEROOUT is cheap (write-zeroes / unmap in the device)

    @property
    def sysfs_name(self) -> str:
        return os.path.basename(self.path)

    def open(self, writable: bool = True) -> int:
        flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC
        try:
            return os.open(self.path, flags)
        except OSError as exc:
            raise DiskError(f"cannot open {self.path}: {exc.strerror}") from None

    def describe(self) -> dict[str, object]:
        return {"name": self.path, "size": self.size, "model": self.model,
                "serial": self.serial, "rotational": self.rotational}


def _read_sys(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text or None


def block_device(path: str) -> Disk:
    """A block device described from /sys/block/<name>."""
    name = os.path.basename(os.path.realpath(path))
    sysdir = SYS_BLOCK / name
    sectors = _read_sys(sysdir / "size")
    if sectors is None:
        raise DiskError(f"{path} is not a block device known to /sys/block")
    device = sysdir / "device"
    serial = (_read_sys(sysdir / "serial") or _read_sys(device / "serial")
              or _read_sys(device / "wwid"))
    zeroes = _read_sys(sysdir / "queue" / "write_zeroes_max_bytes")
    return Disk(path=f"/dev/{name}", size=int(sectors) * SECTOR, is_block=True,
                model=_read_sys(device / "model"), serial=serial,
                rotational=_read_sys(sysdir / "queue" / "rotational") == "1",
                offloads_zeroing=bool(zeroes and zeroes != "0"))


def file_disk(path: str) -> Disk:
    """A regular file standing in for a disk (tests, benchmarks)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise DiskError(f"cannot use {path} as a disk: {exc.strerror}") from None
    if stat.S_ISBLK(info.st_mode):
        return block_device(path)
    if not stat.S_ISREG(info.st_mode):
        raise DiskError(f"{path} is neither a block device nor a regular file")
    return Disk(path=os.path.abspath(path), size=info.st_size, is_block=False, model="file",
                serial=None, rotational=False, offloads_zeroing=True)


def discover(explicit: tuple[str, ...] = ()) -> list[Disk]:
    """The disks given explicitly, else the machine's block devices (no ram, loop, sr, zram)."""
    if explicit:
        return [file_disk(path) for path in explicit]
    disks = []
    for entry in sorted(SYS_BLOCK.iterdir()) if SYS_BLOCK.is_dir() else []:
        if entry.name.startswith(SKIPPED_PREFIXES):
            continue
        disk = block_device(entry.name)
        if disk.size > 0:
            disks.append(disk)
    return disks


def choose(disks: list[Disk], requested: str | None, minimum: int) -> Disk:
    """The requested disk (must be one of ``disks``), the only disk, or the smallest big one."""
    if requested:
        wanted = os.path.realpath(requested)
        for disk in disks:
            if os.path.realpath(disk.path) == wanted:
                return disk
        raise DiskError(f"{requested} is not one of this machine's disks: "
                        f"{', '.join(d.path for d in disks) or 'none'}")
    if not disks:
        raise DiskError("this machine has no disk")
    if len(disks) == 1:
        return disks[0]
    big = [disk for disk in disks if disk.size >= minimum]
    if not big:
        raise DiskError(f"no disk of at least {minimum // MiB} MiB; pass target_disk")
    return min(big, key=lambda disk: (disk.size, disk.path))


def write_all(fd: int, data: bytes | memoryview, offset: int, disk: Disk) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.pwrite(fd, view, offset)
        except OSError as exc:
            raise DiskError(f"write error on {disk.path} at byte {offset}: "
                            f"{exc.strerror or exc}") from None
        if written == 0:
            raise DiskError(f"write error on {disk.path} at byte {offset}: no space left")
        view = view[written:]
        offset += written


def _punch(fd: int, offset: int, length: int) -> bool:
    mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
    if _libc.fallocate(fd, mode, offset, length) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EOPNOTSUPP, errno.ENOSYS):
        return False
    raise DiskError(f"cannot zero bytes {offset}-{offset + length}: {os.strerror(code)}")


def _blkzeroout(fd: int, offset: int, length: int) -> bool:
    try:
        fcntl.ioctl(fd, BLKZEROOUT, struct.pack("QQ", offset, length))
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL):
            return False
        raise DiskError(f"cannot zero bytes {offset}-{offset + length}: {exc.strerror}") from None
    return True


def zero_range(fd: int, disk: Disk, offset: int, length: int, cheap_only: bool = False) -> bool:
    """Make ``[offset, offset+length)`` read as zeros. With ``cheap_only``, only if that can be
    done without writing the zeros (hole or device offload); returns whether it was done."""
    length = max(0, min(length, disk.size - offset))
    if length == 0:
        return True
    if disk.offloads_zeroing:
        done = _blkzeroout(fd, offset, length) if disk.is_block else _punch(fd, offset, length)
        if done:
            return True
    if cheap_only:
        return False
    zeros = bytes(min(ZERO_WRITE_CHUNK, length))
    end = offset + length
    while offset < end:
        step = min(len(zeros), end - offset)
        write_all(fd, memoryview(zeros)[:step], offset, disk)
        offset += step
    return True


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing these dirty pages out now, without waiting for it: the
    write-out overlaps the download instead of all happening in the final flush, and dirty
    memory stays low in the ramdisk. Best effort (the final fsync is what counts)."""
    _libc.sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)


def flush(fd: int, disk: Disk) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        raise DiskError(f"cannot flush {disk.path}: {exc.strerror}") from None


def reread_partitions(disk: Disk) -> None:
    """Ask the kernel to re-read the partition table (block devices only)."""
    if not disk.is_block:
        return
    fd = disk.open(writable=False)
    try:
        fcntl.ioctl(fd, BLKRRPART)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # a device that takes no partitions (loop without -P)
            return
        raise DiskError(f"the kernel could not re-read the partitions of {disk.path}: "
                        f"{exc.strerror}") from None
    finally:
        os.close(fd)
