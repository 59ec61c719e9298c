"""The whole-disk layout of the test images: an MBR as BIOS boot code and fdisk read it."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest

from ramdisk.testimages import mbr
from ramdisk.testimages.build import KERNEL_APPEND, syslinux_config


def test_entry_is_bootable_lba_only_with_start_and_size() -> None:
    entry = mbr.partition_entry(2048, 63488, mbr.TYPE_FAT16_LBA, bootable=True)
    assert len(entry) == 16
    assert entry[0] == 0x80 and entry[4] == 0x0E
    assert entry[1:4] == entry[5:8] == b"\xfe\xff\xff"
    assert struct.unpack("<II", entry[8:]) == (2048, 63488)
    assert mbr.partition_entry(2048, 1, mbr.TYPE_LINUX, bootable=False)[0] == 0


@pytest.mark.parametrize(("start", "sectors", "type_id"), [
    (0, 10, 0x83), (2048, 0, 0x83), (1 << 32, 10, 0x83), (2048, 1 << 32, 0x83), (2048, 10, 0),
    (2048, 10, 0x100)])
def test_entries_that_an_mbr_cannot_hold_are_refused(start: int, sectors: int,
                                                      type_id: int) -> None:
    with pytest.raises(mbr.MbrError):
        mbr.partition_entry(start, sectors, type_id, bootable=True)


def test_sector_zero_has_boot_code_signature_one_entry_and_the_boot_signature() -> None:
    entry = mbr.partition_entry(2048, 100, mbr.TYPE_LINUX, bootable=True)
    sector = mbr.master_boot_record(b"\xeb\x63" + b"\x90" * 10, 0x454E434C, entry)
    assert len(sector) == 512
    assert sector[:12] == b"\xeb\x63" + b"\x90" * 10 and sector[12:440] == bytes(428)
    assert sector[440:444] == b"LCNE"  # little-endian disk signature
    assert sector[446:462] == entry and sector[462:510] == bytes(48)
    assert sector[510:] == b"\x55\xaa"
    with pytest.raises(mbr.MbrError):
        mbr.master_boot_record(bytes(441), 0, entry)


def test_written_disk_is_read_back_by_sfdisk(tmp_path: Path) -> None:
    partition = tmp_path / "part.img"
    partition.write_bytes(b"\xab" * (4 * 1024 * 1024))
    disk = tmp_path / "disk.raw"
    mbr.write_disk(disk, b"\x33\xc0", 0x12345678, partition, mbr.TYPE_FAT16_LBA)
    data = disk.read_bytes()
    assert len(data) == 1024 * 1024 + 4 * 1024 * 1024
    assert data[1024 * 1024:] == partition.read_bytes()
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    assert table["label"] == "dos" and table["id"] == "0x12345678"
    [part] = table["partitions"]
    assert (part["start"], part["size"], part["type"], part.get("bootable")) == (
        2048, 8192, "e", True)


def test_partition_that_is_not_whole_sectors_is_refused(tmp_path: Path) -> None:
    partition = tmp_path / "part.img"
    partition.write_bytes(b"x" * 1000)
    with pytest.raises(mbr.MbrError, match="whole number of sectors"):
        mbr.write_disk(tmp_path / "disk.raw", b"", 0, partition, mbr.TYPE_LINUX)


def test_syslinux_boots_the_kernel_and_initrd_at_once_on_the_serial_console() -> None:
    config = syslinux_config().splitlines()
    assert config[:3] == ["DEFAULT enclume", "PROMPT 0", "TIMEOUT 0"]
    assert "  LINUX /vmlinuz" in config and "  INITRD /initrd.img" in config
    assert f"  APPEND {KERNEL_APPEND}" in config and "console=ttyS0" in KERNEL_APPEND
