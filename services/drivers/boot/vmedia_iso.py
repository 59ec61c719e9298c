"""The deploy ISO of the ``redfish-virtual-media`` boot interface: the deploy kernel and
ramdisk with the node's kernel command line, bootable by UEFI firmware from a (virtual) CD.

Made as Ironic makes its UEFI boot ISOs: an EFI system partition image (a FAT file system, made
with mkfs.fat and mtools) holding systemd-boot at the removable-media path
``EFI/BOOT/BOOTX64.EFI``, one loader entry, the kernel and the ramdisk; xorriso writes the ISO
9660 image with it appended as partition 2 (type EF) and as the El Torito EFI boot image, as
Debian's installer ISOs are made. An El Torito image alone (genisoimage ``-e``) cannot hold a
kernel and ramdisk over 32 MiB: its sector count is 16 bits, and firmware reads no further.
Legacy BIOS boot would need ISOLINUX, which Enclume does not ship: the interface refuses nodes
in BIOS boot mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from services.drivers.base import DriverError

UEFI_LOADER = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
# program -> the Debian package that has it
TOOLS = {"genisoimage": "genisoimage", "mkfs.fat": "dosfstools", "mcopy": "mtools"}
VOLUME_LABEL = "ENCLUME_DEPLOY"
SLACK_BYTES = 4 * 1024 * 1024  # FAT tables, directories and the loader's files
TOOL_TIMEOUT_S = 120


def missing_tools() -> list[str]:
    """What building the ISO needs and this machine lacks, as "program (Debian package)"."""
    missing = [f"{tool} ({package})" for tool, package in TOOLS.items() if not shutil.which(tool)]
    if not UEFI_LOADER.is_file():
        missing.append(f"{UEFI_LOADER} (systemd-boot-efi)")
    return missing


def _run(args: list[str], what: str) -> None:
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    try:
        subprocess.run(args, check=True, capture_output=True, timeout=TOOL_TIMEOUT_S, env=env)
    except subprocess.CalledProcessError as exc:
        error = exc.stderr.decode(errors="replace").strip()[-500:]
        raise DriverError(f"Building the virtual media ISO failed {what}: {error}") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DriverError(f"Building the virtual media ISO failed {what}: {exc}") from None


def loader_files(kernel_params: str) -> dict[str, str]:
    """systemd-boot's configuration: the one entry, booted at once."""
    return {"loader/loader.conf": "default enclume.conf\ntimeout 0\n",
            "loader/entries/enclume.conf": (
                f"title Enclume deploy ramdisk\nlinux /vmlinuz\ninitrd /initrd\n"
                f"options {kernel_params}\n")}


def build(kernel: Path, ramdisk: Path, kernel_params: str, out: Path) -> None:
    """Write the ISO to ``out`` (replaced at once, so a BMC never reads half of one)."""
    if missing := missing_tools():
        raise DriverError(f"Building the virtual media ISO needs {', '.join(missing)} on the "
                          f"conductor.")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".vmedia-") as work_dir:
        work = Path(work_dir)
        esp_files = work / "esp"
        for path, text in loader_files(kernel_params).items():
            (esp_files / path).parent.mkdir(parents=True, exist_ok=True)
            (esp_files / path).write_text(text)
        (esp_files / "EFI" / "BOOT").mkdir(parents=True)
        shutil.copyfile(UEFI_LOADER, esp_files / "EFI" / "BOOT" / "BOOTX64.EFI")
        shutil.copyfile(kernel, esp_files / "vmlinuz")
        shutil.copyfile(ramdisk, esp_files / "initrd")
        size = sum(f.stat().st_size for f in esp_files.rglob("*") if f.is_file()) + SLACK_BYTES
        iso_root = work / "iso"
        (iso_root / "boot").mkdir(parents=True)
        esp = iso_root / "boot" / "efiboot.img"
        _run(["mkfs.fat", "-C", "-n", "ENCLUME", str(esp), str(size // 1024 + 1)],
             "making the EFI system partition")
        _run(["mcopy", "-s", "-i", str(esp), *(str(p) for p in sorted(esp_files.iterdir())),
              "::/"], "filling the EFI system partition")
        partial = work / "deploy.iso"
        _run(["genisoimage", "-quiet", "-o", str(partial), "-V", VOLUME_LABEL, "-J", "-r",
              "-e", "boot/efiboot.img", "-no-emul-boot", "-boot-load-size", "1",
              str(iso_root)], "making the ISO image")
        partial.replace(out)
