"""A BIOS whole-disk layout: an MBR (boot code, disk signature, one bootable partition) followed
by the partition's bytes, written without loop devices or mounts."""

from __future__ import annotations

import struct
from pathlib import Path

SECTOR = 512
BOOT_CODE_SIZE = 440  # what mbr.bin provides; the disk signature and table follow it
PARTITION_START_SECTOR = 2048  # 1 MiB, as fdisk and parted align
SIGNATURE = b"\x55\xaa"
BOOTABLE = 0x80
# LBA-only entries: CHS fields saturated (1023/254/63), as fdisk writes for large disks.
CHS_MAX = b"\xfe\xff\xff"
TYPE_FAT16_LBA = 0x0E
TYPE_LINUX = 0x83


class MbrError(ValueError):
    pass


def partition_entry(start_sector: int, sectors: int, type_id: int, bootable: bool) -> bytes:
    if not 0 < start_sector < 1 << 32 or not 0 < sectors < 1 << 32:
        raise MbrError(f"an MBR partition must start and end below 2 TiB "
                       f"(start {start_sector}, {sectors} sectors)")
    if not 0 < type_id < 0x100:
        raise MbrError(f"partition type must be one byte, not {type_id:#x}")
    return (bytes([BOOTABLE if bootable else 0]) + CHS_MAX + bytes([type_id]) + CHS_MAX
            + struct.pack("<II", start_sector, sectors))


def master_boot_record(boot_code: bytes, disk_signature: int, entry: bytes) -> bytes:
    """Sector 0: boot code (at most 440 bytes, zero padded), signature, one entry, 0x55AA."""
    if len(boot_code) > BOOT_CODE_SIZE:
        raise MbrError(f"MBR boot code is {len(boot_code)} bytes, at most {BOOT_CODE_SIZE} fit")
    sector = (boot_code.ljust(BOOT_CODE_SIZE, b"\0") + struct.pack("<I", disk_signature)
              + b"\0\0" + entry + bytes(3 * 16) + SIGNATURE)
    assert len(sector) == SECTOR
    return sector


def write_disk(out: Path, boot_code: bytes, disk_signature: int, partition: Path,
               type_id: int) -> None:
    """`out` = MBR + gap up to 1 MiB + the partition image (a whole number of sectors)."""
    size = partition.stat().st_size
    if size == 0 or size % SECTOR:
        raise MbrError(f"{partition} is {size} bytes, not a whole number of sectors")
    entry = partition_entry(PARTITION_START_SECTOR, size // SECTOR, type_id, bootable=True)
    with out.open("wb") as disk, partition.open("rb") as source:
        disk.write(master_boot_record(boot_code, disk_signature, entry))
        disk.write(bytes((PARTITION_START_SECTOR - 1) * SECTOR))
        for block in iter(lambda: source.read(1 << 20), b""):
            disk.write(block)
