"""The config drive: a ``config-2`` labelled ISO9660 or vfat image of at most 64 MiB, given as a
URL or as base64 of the (usually gzipped) image."""

from __future__ import annotations

import base64
import binascii
import os
import zlib

from agent import partitions
from agent.disks import Disk, MiB, flush, write_all
from agent.download import check_url, open_url
from agent.errors import BadParams, CommandError

MAX_SIZE = 64 * MiB
LABEL = b"config-2"
ISO_PVD = 16 * 2048  # primary volume descriptor: type 1, "CD001", volume id at +40
FAT_LABELS = (43, 71)  # volume label in the FAT12/16 and FAT32 boot sectors
GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(data: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, MAX_SIZE + 1)
    except zlib.error as exc:
        raise BadParams(f"the config drive is not valid gzip: {exc}") from None
    if len(out) > MAX_SIZE or inflater.unconsumed_tail:
        raise BadParams("the config drive is larger than 64 MiB once decompressed")
    return out


def _fetch(url: str, timeout_s: float) -> bytes:
    download = open_url(url, timeout_s)
    try:
        if download.total is not None and download.total > MAX_SIZE * 2:
            raise CommandError(f"the config drive at {url} is too large ({download.total} bytes)")
        buffer = bytearray(MAX_SIZE * 2 + 1)
        count = download.readinto(memoryview(buffer))
    finally:
        download.close()
    if count > MAX_SIZE * 2:
        raise CommandError(f"the config drive at {url} is too large")
    return bytes(buffer[:count])


def has_label(image: bytes) -> bool:
    pvd = image[ISO_PVD:ISO_PVD + 72]
    if len(pvd) == 72 and pvd[0] == 1 and pvd[1:6] == b"CD001":
        return pvd[40:72].strip().lower() == LABEL
    return any(image[at:at + 11].strip().lower() == LABEL for at in FAT_LABELS)


def load(value: object, timeout_s: float) -> bytes:
    """The config drive image from the ``configdrive`` parameter, checked."""
    if not isinstance(value, str) or not value:
        raise BadParams("configdrive must be a URL or base64 text")
    if value.startswith(("http://", "https://")):
        raw = _fetch(check_url(value, "configdrive"), timeout_s)
    else:
        try:
            raw = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise BadParams("configdrive is neither an http(s) URL nor valid base64") from None
    image = _gunzip(raw) if raw[:2] == GZIP_MAGIC else raw
    if len(image) > MAX_SIZE:
        raise BadParams(f"the config drive is {len(image)} bytes; at most 64 MiB are allowed")
    if not has_label(image):
        raise BadParams("the config drive is not an ISO9660 or vfat image labelled config-2")
    return image


def partition_size(image: bytes) -> int:
    """The partition the image goes to: whole MiB, at least 64 MiB as Ironic makes it."""
    return max(MAX_SIZE, -(-len(image) // MiB) * MiB)


def labelled_partition(disk: Disk) -> partitions.Partition | None:
    """The disk's partition that already holds a config drive (a captured PC's disk keeps the
    one it was deployed with), if any."""
    table = partitions.read(disk)
    if table is None:
        return None
    fd = disk.open(writable=False)
    try:
        for part in table.partitions:
            if has_label(os.pread(fd, min(part.size, ISO_PVD + 72), part.start)):
                return part
    finally:
        os.close(fd)
    return None


def past_the_image(disk: Disk, image_end: int) -> partitions.Partition | None:
    """The last partition of the table, when it lies wholly past the image's end: an earlier
    deploy's config drive partition, whose entry came with the image's blocks (a student's
    state or a captured version holds the partition table of a deployed PC) but whose content,
    outside them, did not."""
    table = partitions.read(disk)
    if table is None or not table.partitions:
        return None
    last = max(table.partitions, key=lambda part: part.start)
    return last if last.start >= image_end else None


def append_partition(disk: Disk, image: bytes, image_end: int | None = None) -> int:
    """A partition at the end of ``disk`` holding ``image`` (after a whole-disk image: its
    partitions are left as they are); its number. A partition already labelled config-2 is
    written over instead, as Ironic does, and so is one wholly past ``image_end`` (the
    image's size, when the caller wrote only that far)."""
    part = labelled_partition(disk)
    if part is None and image_end is not None:
        part = past_the_image(disk, image_end)
    if part is not None and part.size < len(image):
        raise CommandError(f"the config drive ({len(image)} bytes) does not fit in the "
                           f"{part.size}-byte config-2 partition {part.number} of {disk.path}")
    if part is None:
        part = partitions.append_at_end(disk, partition_size(image))
    fd = disk.open()
    try:
        write_all(fd, image, part.start, disk)
        flush(fd, disk)
    finally:
        os.close(fd)
    return part.number
