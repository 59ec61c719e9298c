"""Making a disk written from a partition image boot: EXTLINUX (BIOS), systemd-boot (UEFI).

A partition image carries a root file system with its kernel and initrd in /boot but no boot
loader. GRUB would need grub-pc's modules and grub-install in the ramdisk; EXTLINUX (Debian's
``extlinux`` package, ~0.5 MiB) boots ext2/3/4, XFS, Btrfs and FAT from the MBR boot code of
``mbr.bin`` and a small config next to it. For UEFI the agent makes an EFI system partition
(mkfs.vfat, filled with mtools: no vfat driver is needed) holding systemd-boot as the removable
media path ``/EFI/BOOT/BOOTX64.EFI`` (no NVRAM entry to create), one loader entry, and copies
of the kernel and initrd (systemd-boot reads only its own partition).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent import partitions
from agent.disks import Disk, flush, write_all
from agent.errors import CommandError
from agent.partitions import Partition
from agent.tools import run

MBR_CODE_CANDIDATES = ("/usr/lib/EXTLINUX/mbr.bin", "/usr/lib/syslinux/mbr/mbr.bin")
SYSTEMD_BOOT = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
ESP_LABEL = "ESP"
MBR_CODE_SIZE = 440  # boot code; the partition table after it stays
KERNEL_PATTERNS = ("vmlinuz-*", "vmlinuz", "bzImage*")
INITRD_NAMES = ("initrd.img-{v}", "initramfs-{v}.img", "initrd-{v}", "initrd.img", "initrd")
DEFAULT_APPEND = "ro console=tty0 console=ttyS0,115200n8"
CONFIG_DIR = "boot/extlinux"


def _version_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def find_kernel(root: Path) -> tuple[str, str | None]:
    """The newest kernel in /boot and its initrd, as paths from the file system's root."""
    boot = root / "boot"
    kernels = [path for pattern in KERNEL_PATTERNS for path in boot.glob(pattern)
               if path.is_file() or path.is_symlink()]
    if not kernels:
        raise CommandError("the partition image has no kernel in /boot (vmlinuz-*); images "
                           "without one must be whole-disk images with their own boot loader")
    kernel = max(kernels, key=_version_key)
    version = kernel.name.split("-", 1)[1] if "-" in kernel.name else ""
    for name in INITRD_NAMES:
        candidate = boot / name.format(v=version)
        if candidate.exists():
            return f"/boot/{kernel.name}", f"/boot/{candidate.name}"
    return f"/boot/{kernel.name}", None


def rewrite_through_kernel(path: Path) -> None:
    """Copy a file onto itself through the kernel's file-system driver.

    EXTLINUX 6.04 fails with "I/O error" on files whose blocks ``mke2fs -d`` laid out (measured
    on Debian 12: the same kernel copied in by the running kernel boots). The bytes stay the same.
    """
    if path.is_symlink() or not path.is_file():
        return
    copy = path.with_name(path.name + ".enclume-rewrite")
    shutil.copy2(path, copy)
    with copy.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(copy, path)


def extlinux_config(kernel: str, initrd: str | None, root_uuid: str, append: str) -> str:
    lines = ["DEFAULT enclume", "PROMPT 0", "TIMEOUT 1", "", "LABEL enclume",
             f"  LINUX {kernel}"]
    if initrd:
        lines.append(f"  INITRD {initrd}")
    lines.append(f"  APPEND root=UUID={root_uuid} {append}".rstrip())
    return "\n".join(lines) + "\n"


@contextmanager
def partition_device(disk: Disk, part: Partition) -> Iterator[str]:
    """A block device for the partition: its node on a real disk, a loop device on a file."""
    if disk.is_block:
        path = partitions.device_path(disk, part.number)
        partitions.wait_for_device(path)
        yield path
        return
    loop = run(["losetup", "--find", "--show", "--offset", str(part.start), "--sizelimit",
                str(part.size), disk.path], f"attaching partition {part.number} of {disk.path}")
    device = loop.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", device], check=False, capture_output=True)


@contextmanager
def mounted(device: str, read_only: bool = False) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="enclume-root-") as directory:
        run(["mount", *(["-o", "ro"] if read_only else []), device, directory],
            f"mounting {device}")
        try:
            yield Path(directory)
        finally:
            subprocess.run(["umount", directory], check=False, capture_output=True)


def filesystem_uuid(device: str) -> str:
    uuid = run(["blkid", "-o", "value", "-s", "UUID", device], f"reading the UUID of {device}")
    if not uuid.strip():
        raise CommandError(f"the root file system on {device} has no UUID")
    return uuid.strip()


def _mbr_code() -> bytes:
    for path in MBR_CODE_CANDIDATES:
        if os.path.exists(path):
            return Path(path).read_bytes()[:MBR_CODE_SIZE]
    raise CommandError("the ramdisk has no EXTLINUX mbr.bin (Debian package extlinux)")


def install_bios(disk: Disk, root: Partition, append: str | None) -> str:
    """Install EXTLINUX for the root partition; returns the root file system's UUID."""
    mbr = _mbr_code()
    with partition_device(disk, root) as device:
        root_uuid = filesystem_uuid(device)
        with mounted(device) as mountpoint:
            config_dir = mountpoint / CONFIG_DIR
            config_dir.mkdir(parents=True, exist_ok=True)
            config = config_dir / "extlinux.conf"
            if not config.exists():  # an image that brings its own EXTLINUX config keeps it
                kernel, initrd = find_kernel(mountpoint)
                for booted in (kernel, initrd):
                    if booted:
                        rewrite_through_kernel(mountpoint / booted.lstrip("/"))
                config.write_text(extlinux_config(kernel, initrd, root_uuid,
                                                  DEFAULT_APPEND if append is None else append))
            run(["extlinux", "--install", str(config_dir)], f"installing EXTLINUX on {device}")
    fd = disk.open()
    try:
        write_all(fd, mbr, 0, disk)
        flush(fd, disk)
    finally:
        os.close(fd)
    return root_uuid


def _mtools(device: str, *argv: str) -> None:
    run([argv[0], "-i", device, *argv[1:]], f"writing the EFI system partition ({argv[0]})")


def install_uefi(disk: Disk, esp: Partition, root: Partition, append: str | None) -> str:
    """Make the ESP with systemd-boot booting the root partition's newest kernel; returns the
    root file system's UUID."""
    if not os.path.exists(SYSTEMD_BOOT):
        raise CommandError(f"the ramdisk has no {SYSTEMD_BOOT} (Debian package systemd-boot-efi)")
    with tempfile.TemporaryDirectory(prefix="enclume-esp-") as staging:
        files = Path(staging)
        with partition_device(disk, root) as device:
            root_uuid = filesystem_uuid(device)
            with mounted(device, read_only=True) as mountpoint:  # the image stays as it was
                kernel, initrd = find_kernel(mountpoint)
                shutil.copyfile(mountpoint / kernel.lstrip("/"), files / "vmlinuz")
                if initrd:
                    shutil.copyfile(mountpoint / initrd.lstrip("/"), files / "initrd")
        options = f"root=UUID={root_uuid} {DEFAULT_APPEND if append is None else append}"
        entry = ["title Enclume deployed image", "linux /enclume/vmlinuz",
                 *(["initrd /enclume/initrd"] if initrd else []), f"options {options.rstrip()}"]
        (files / "enclume.conf").write_text("\n".join(entry) + "\n")
        (files / "loader.conf").write_text("default enclume.conf\ntimeout 0\n")
        with partition_device(disk, esp) as device:
            run(["mkfs.vfat", "-F", "32", "-n", ESP_LABEL, device],
                f"making the EFI system partition on {device}")
            for directory in ("::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries",
                              "::/enclume"):
                _mtools(device, "mmd", directory)
            _mtools(device, "mcopy", SYSTEMD_BOOT, "::/EFI/BOOT/BOOTX64.EFI")
            _mtools(device, "mcopy", str(files / "loader.conf"), "::/loader/loader.conf")
            _mtools(device, "mcopy", str(files / "enclume.conf"),
                    "::/loader/entries/enclume.conf")
            _mtools(device, "mcopy", str(files / "vmlinuz"), "::/enclume/vmlinuz")
            if initrd:
                _mtools(device, "mcopy", str(files / "initrd"), "::/enclume/initrd")
    return root_uuid
