"""What a capture reads: the whole disk, or its root partition for a partition image.

The root partition is the one the caller names (``root_partition``, its number in the table),
else the largest Linux partition of the table (dos type 83; GPT "Linux filesystem" or one of
the discoverable root types): a teacher's install has one large root next to small boot, EFI
and swap partitions. A disk without a table, or without a Linux partition when none is named,
is refused, listing what the table has.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent import partitions
from agent.disks import Disk
from agent.errors import BadParams, CommandError

WHOLE_DISK, PARTITION = "whole-disk", "partition"
IMAGE_TYPES = (WHOLE_DISK, PARTITION)
LINUX_TYPES = frozenset({
    "83",  # dos: Linux
    "0FC63DAF-8483-4772-8E79-3D69D8477DE4",  # GPT: Linux filesystem
    "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",  # GPT: root (x86-64)
    "44479540-F297-41B2-9AF7-D131D5F0458A",  # GPT: root (x86)
    "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",  # GPT: root (arm64)
})


@dataclass(frozen=True)
class CaptureSource:
    label: str  # "/dev/sda" or "/dev/sda partition 2", for messages
    base: int  # bytes from the start of the disk
    size: int
    partition: int | None = None


def check_params(image_type: object, root_partition: object) -> tuple[str, int | None]:
    image_type = image_type or WHOLE_DISK
    if image_type not in IMAGE_TYPES:
        raise BadParams(f"image_type must be whole-disk or partition, not {image_type!r}")
    if root_partition is not None:
        if image_type != PARTITION:
            raise BadParams("root_partition belongs to partition captures only")
        if isinstance(root_partition, bool) or not isinstance(root_partition, int) \
                or root_partition < 1:
            raise BadParams(f"root_partition must be a partition number (1, 2, …), "
                            f"not {root_partition!r}")
    return str(image_type), root_partition


def source(disk: Disk, image_type: str, root_partition: int | None) -> CaptureSource:
    if image_type == WHOLE_DISK:
        return CaptureSource(disk.path, 0, disk.size)
    table = partitions.read(disk)
    if table is None or not table.partitions:
        raise CommandError(f"{disk.path} has no partition table: it has no root partition to "
                           f"capture (capture it whole)")
    found = _root(table.partitions, root_partition)
    if found is None:
        listed = ", ".join(f"{part.number} (type {part.type}, {part.size} bytes)"
                           for part in table.partitions)
        wanted = (f"no partition {root_partition}" if root_partition is not None
                  else "no Linux partition")
        raise CommandError(f"{disk.path} has {wanted}: its partitions are {listed}; name the "
                           f"root one with root_partition")
    if found.start + found.size > disk.size:
        raise CommandError(f"partition {found.number} of {disk.path} ends past the disk's end")
    return CaptureSource(f"{disk.path} partition {found.number}", found.start, found.size,
                         found.number)


def _root(parts: tuple[partitions.Partition, ...], number: int | None
          ) -> partitions.Partition | None:
    if number is not None:
        return next((part for part in parts if part.number == number), None)
    linux = [part for part in parts if part.type.upper() in LINUX_TYPES]
    return max(linux, key=lambda part: (part.size, -part.number), default=None)
