"""Erasing disks: metadata only (fast, automated cleaning) or every byte (manual clean step).

Metadata, as Ironic's agent does it: the first and last MiB of every partition (file-system,
RAID and LVM signatures) and of the disk itself (MBR, primary GPT, backup GPT).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from agent import partitions
from agent.disks import Disk, MiB, flush, reread_partitions, zero_range
from agent.errors import CommandError

LOG = logging.getLogger(__name__)
EDGE = 1 * MiB
FULL_ERASE_STEP = 64 * MiB


def _edges(fd: int, disk: Disk, start: int, size: int) -> None:
    zero_range(fd, disk, start, min(EDGE, size))
    if size > EDGE:
        zero_range(fd, disk, max(start + size - EDGE, start + EDGE), EDGE)


def wipe_metadata(disk: Disk) -> int:
    """Zero the edges of every partition and of the disk; returns how many partitions."""
    try:
        table = partitions.read(disk)
    except CommandError as exc:  # a garbled table still gets its disk edges wiped
        LOG.warning("%s", exc)
        table = None
    fd = disk.open()
    try:
        for part in table.partitions if table else ():
            if 0 <= part.start < disk.size:
                _edges(fd, disk, part.start, min(part.size, disk.size - part.start))
        _edges(fd, disk, 0, disk.size)
        flush(fd, disk)
    finally:
        os.close(fd)
    reread_partitions(disk)
    return len(table.partitions) if table else 0


def make_unbootable(disk: Disk) -> None:
    """After a failed write: nothing on the disk may look like a bootable image. Best effort,
    as the disk may be what failed."""
    try:
        wipe_metadata(disk)
    except Exception as exc:  # the original failure is what the operator needs to see
        LOG.error("could not wipe %s after a failed write: %s", disk.path, exc)


def erase_full(disk: Disk, on_progress: Callable[[int], None]) -> None:
    """Every byte of the disk reads as zero afterwards."""
    fd = disk.open()
    try:
        for offset in range(0, disk.size, FULL_ERASE_STEP):
            zero_range(fd, disk, offset, FULL_ERASE_STEP)
            on_progress(min(offset + FULL_ERASE_STEP, disk.size))
        flush(fd, disk)
    finally:
        os.close(fd)
    reread_partitions(disk)

