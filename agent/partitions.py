"""Partition tables through sfdisk: reading them, writing a layout, adding one at the end."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from agent.disks import SECTOR, Disk, MiB
from agent.errors import CommandError
from agent.tools import run

GPT_RESERVED = 33 * SECTOR  # backup GPT entries + header at the end of the disk
SFDISK_FLAGS = ["--no-reread", "--no-tell-kernel", "--quiet"]


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # bytes
    size: int  # bytes
    type: str  # sfdisk's type: "83", "82", "ef" (dos) or a GPT type GUID / shortcut
    bootable: bool = False
    role: str = ""  # root, swap, configdrive, esp (for the caller)


@dataclass(frozen=True)
class Table:
    label: str  # "dos" or "gpt"
    partitions: tuple[Partition, ...]


def read(disk: Disk) -> Table | None:
    """The disk's partition table, or None when it has none sfdisk recognizes."""
    try:
        out = run(["sfdisk", "--json", disk.path], f"reading the partition table of {disk.path}")
    except CommandError as exc:
        if "does not contain a recognized partition table" in str(exc):
            return None
        raise
    if not out.strip():
        return None
    table = json.loads(out)["partitiontable"]
    sector = int(table.get("sectorsize", SECTOR))
    parts = []
    for entry in table.get("partitions", []):
        suffix = str(entry["node"])[len(disk.path):].lstrip("p")
        parts.append(Partition(number=int(suffix) if suffix.isdigit() else 0,
                               start=int(entry["start"]) * sector,
                               size=int(entry["size"]) * sector, type=str(entry.get("type", "")),
                               bootable=bool(entry.get("bootable", False))))
    return Table(label=table["label"], partitions=tuple(parts))


def _line(part: Partition) -> str:
    line = f"start={part.start // SECTOR}, size={part.size // SECTOR}, type={part.type}"
    return line + (", bootable" if part.bootable else "")


def write(disk: Disk, table: Table) -> None:
    script = "\n".join([f"label: {table.label}", "unit: sectors", "",
                        *(_line(part) for part in table.partitions)]) + "\n"
    run(["sfdisk", *SFDISK_FLAGS, disk.path], f"writing the partition table of {disk.path}",
        stdin=script.encode())


def usable_end(disk: Disk, label: str) -> int:
    return disk.size - (GPT_RESERVED if label == "gpt" else 0)


def append_at_end(disk: Disk, size: int, type_: str = "L") -> Partition:
    """Add a partition of ``size`` bytes ending at the end of the disk (after any GPT backup was
    moved to the disk's real end: an image smaller than the disk carries it at its own end)."""
    table = read(disk)
    if table is None:
        raise CommandError(f"the image on {disk.path} has no partition table to add the config "
                           "drive partition to")
    if table.label == "gpt":
        run(["sfdisk", *SFDISK_FLAGS, "--relocate", "gpt-bak-std", disk.path],
            f"moving the backup GPT of {disk.path} to the end of the disk")
    start = (usable_end(disk, table.label) - size) // MiB * MiB
    last_end = max((part.start + part.size for part in table.partitions), default=MiB)
    if start < last_end:
        raise CommandError(f"no room for a {size // MiB} MiB config drive partition at the end "
                           f"of {disk.path}: the image's partitions reach byte {last_end}")
    run(["sfdisk", *SFDISK_FLAGS, "--append", disk.path],
        f"adding the config drive partition to {disk.path}",
        stdin=f"start={start // SECTOR}, size={size // SECTOR}, type={type_}\n".encode())
    added = read(disk)
    for part in added.partitions if added else ():
        if part.start == start:
            return part
    raise CommandError(f"sfdisk did not add the config drive partition to {disk.path}")


def device_path(disk: Disk, number: int) -> str:
    """/dev/sda1, /dev/nvme0n1p1, /dev/loop0p1, /dev/mmcblk0p1."""
    separator = "p" if disk.path[-1].isdigit() else ""
    return f"{disk.path}{separator}{number}"


def wait_for_device(path: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise CommandError(f"{path} did not appear after the partition table was re-read")
        time.sleep(0.1)
