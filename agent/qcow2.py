"""qcow2 images: staged (and checksummed) first, then converted onto the disk by qemu-img.

qemu-img cannot read qcow2 from a pipe, and reading the URL through its curl driver would fetch
clusters out of order (no checksum on the way) and needs qemu-block-extra's libcurl in the
ramdisk. So the download is streamed, hashed, onto a staging area: the tail of the target disk
when the image fits there behind the converted output, else a file in the staging directory
(a tmpfs in the ramdisk). Only a verified image is converted; a qcow2 that names a backing file
is refused (it could make qemu-img read any file or URL).
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from agent import stream
from agent.checksum import Checksum
from agent.disks import SECTOR, Disk, MiB, file_disk, flush, write_all
from agent.download import Download, open_url
from agent.errors import CommandError
from agent.tools import run

MAGIC = b"QFI\xfb"
HEADER_BYTES = 512
V2_HEADER_BYTES = 72
V3_HEADER_BYTES = 104
EXTERNAL_DATA_FILE = 1 << 2  # incompatible feature bit: the data clusters live in another file
HOLD = 1 * MiB  # first and last MiB of the converted image, written last
STAGING_MARGIN = 64 * MiB  # memory left free when staging in the ramdisk's tmpfs


@dataclass(frozen=True)
class Staged:
    disk: Disk  # where the qcow2 bytes are: the target disk's tail or a staging file
    offset: int
    size: int
    virtual_size: int


def _driver(disk: Disk) -> str:
    return "host_device" if disk.is_block else "file"


def _escape(value: str) -> str:
    return value.replace(",", ",,")


def _qcow2_node(staged: Staged) -> dict[str, object]:
    return {"driver": "qcow2", "backing": None,
            "file": {"driver": "raw", "offset": staged.offset, "size": staged.size,
                     "file": {"driver": _driver(staged.disk), "filename": staged.disk.path,
                              "locking": "off"}}}


def source_spec(staged: Staged, offset: int = 0, length: int | None = None) -> str:
    """The staged image as qemu-img reads it: ``[offset, offset+length)`` of its virtual disk."""
    node = _qcow2_node(staged)
    if offset or length is not None:
        node = {"driver": "raw", "offset": offset,
                "size": staged.virtual_size - offset if length is None else length,
                "file": node}
    return "json:" + json.dumps(node)


def target_spec(disk: Disk, offset: int, length: int) -> str:
    return (f"driver=raw,offset={offset},size={length},file.driver={_driver(disk)},"
            f"file.locking=off,file.filename={_escape(disk.path)}")


def parse_header(head: bytes) -> int:
    """The virtual size of a qcow2 image from its header; refuses what would make qemu-img
    open other files (a backing file, an external data file) or need a key (encryption)."""
    if len(head) < V2_HEADER_BYTES or head[:4] != MAGIC:
        raise CommandError("the image is not qcow2 (no QFI\\xfb magic)")
    version, = struct.unpack(">I", head[4:8])
    backing_offset, = struct.unpack(">Q", head[8:16])
    if backing_offset:
        raise CommandError("qcow2 images with a backing file are refused")
    crypt_method, = struct.unpack(">I", head[32:36])
    if crypt_method:
        raise CommandError("encrypted qcow2 images are refused")
    if version >= 3:
        if len(head) < V3_HEADER_BYTES:
            raise CommandError("the qcow2 header is truncated")
        incompatible, = struct.unpack(">Q", head[72:80])
        if incompatible & EXTERNAL_DATA_FILE:
            raise CommandError("qcow2 images with an external data file are refused")
    size, = struct.unpack(">Q", head[24:32])
    return int(size)


def _memory_available() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


@contextmanager
def _staging_file(directory: str, size: int | None) -> Iterator[Disk]:
    if size is not None:
        free = os.statvfs(directory)
        room = free.f_bavail * free.f_frsize
        if size + STAGING_MARGIN > min(room, _memory_available() or room):
            raise CommandError(f"the qcow2 image ({size} bytes) fits neither behind the image on "
                               f"the target disk nor in {directory}")
    with tempfile.NamedTemporaryFile(dir=directory, prefix="enclume-qcow2-") as handle:
        if size is not None:
            os.ftruncate(handle.fileno(), size)
        yield file_disk(handle.name)


def peek_virtual_size(url: str, timeout_s: float) -> int:
    """The virtual size from the image's header, fetched alone before the download."""
    download = open_url(url, timeout_s, first_bytes=HEADER_BYTES)
    try:
        buffer = bytearray(HEADER_BYTES)
        count = download.readinto(memoryview(buffer))
    finally:
        download.close()
    return parse_header(bytes(buffer[:count]))


def write(download: Download, checksum: Checksum, disk: Disk, fd: int, target_offset: int,
          target_length: int, staging_dir: str, timeout_s: float,
          on_progress: Callable[[int], None]) -> tuple[int, int]:
    """Stage, verify and convert; returns (image bytes, virtual size)."""
    virtual = peek_virtual_size(download.url, timeout_s)
    if virtual > target_length:
        raise CommandError(f"the qcow2 image's virtual size ({virtual} bytes) is larger than "
                           f"the {target_length} bytes available for it on {disk.path}")
    total = download.total
    tail_start = None if total is None else (disk.size - total) // MiB * MiB
    if tail_start is not None and tail_start >= target_offset + virtual:
        return _stage_and_convert(download, checksum, disk, fd, target_offset, target_length,
                                  disk, fd, tail_start, staging_dir, on_progress)
    with _staging_file(staging_dir, total) as staging_disk:
        staging_fd = staging_disk.open()
        try:
            if total is None:  # unknown size: let the file grow as the body arrives
                staging_disk = Disk(path=staging_disk.path, size=1 << 62, is_block=False,
                                    offloads_zeroing=False)
            return _stage_and_convert(download, checksum, disk, fd, target_offset,
                                      target_length, staging_disk, staging_fd, 0, staging_dir,
                                      on_progress)
        finally:
            os.close(staging_fd)


def _stage_and_convert(download: Download, checksum: Checksum, disk: Disk, fd: int,
                       target_offset: int, target_length: int, staging_disk: Disk,
                       staging_fd: int, staging_offset: int, scratch_dir: str,
                       on_progress: Callable[[int], None]) -> tuple[int, int]:
    region = stream.Region(staging_disk, staging_fd, staging_offset,
                           staging_disk.size - staging_offset)
    result = stream.stream(download, region, checksum.hasher(), on_progress)
    checksum.verify(result.digest, download.url)
    stream.commit(region, result)
    virtual = parse_header(result.head)
    limit = target_length
    if staging_disk is disk:
        limit = min(limit, staging_offset - target_offset)
    if virtual > limit:
        raise CommandError(f"the qcow2 image's virtual size ({virtual} bytes) does not fit in "
                           f"the {limit} bytes available for it on {disk.path}")
    staged = Staged(staging_disk, staging_offset, result.size, virtual)
    convert(staged, disk, fd, target_offset, scratch_dir)
    return result.size, virtual


def _extract(staged: Staged, offset: int, length: int, directory: str) -> bytes:
    """``[offset, offset+length)`` of the image's virtual disk, as bytes (both in sectors)."""
    with tempfile.TemporaryDirectory(dir=directory, prefix="enclume-qcow2-part-") as scratch:
        out = os.path.join(scratch, "part.raw")
        run(["qemu-img", "dd", "-O", "raw", f"bs={SECTOR}", f"skip={offset // SECTOR}",
             f"count={length // SECTOR}", f"if={source_spec(staged)}", f"of={out}"],
            "reading the qcow2 image's first and last MiB")
        with open(out, "rb") as handle:
            return handle.read()


def convert(staged: Staged, disk: Disk, fd: int, target_offset: int, scratch_dir: str) -> None:
    """Convert onto the disk, its first and last MiB (partition tables) written last, as for
    raw images: a conversion cut short leaves no bootable half image."""
    virtual = staged.virtual_size
    hold = HOLD if virtual >= 4 * HOLD and virtual % SECTOR == 0 else 0
    run(["qemu-img", "convert", "-n", "-W", source_spec(staged, hold, virtual - 2 * hold),
         "--target-image-opts", target_spec(disk, target_offset + hold, virtual - 2 * hold)],
        f"converting the qcow2 image onto {disk.path}", timeout_s=24 * 3600)
    if not hold:
        return
    head = _extract(staged, 0, hold, scratch_dir)
    tail = _extract(staged, virtual - hold, hold, scratch_dir)
    flush(fd, disk)
    write_all(fd, tail, target_offset + virtual - hold, disk)
    write_all(fd, head, target_offset, disk)
    flush(fd, disk)
