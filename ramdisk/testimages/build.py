"""Build the lab's test OS images into <cache>/testimages, from packages cached in <cache>/debs.

    disk.raw, disk.qcow2            whole-disk image (BIOS and UEFI): MBR (syslinux-common's
                                    mbr.bin), one bootable FAT16 partition with SYSLINUX (BIOS),
                                    systemd-boot as /EFI/BOOT/BOOTX64.EFI (UEFI), vmlinuz,
                                    initrd.img
    partition.img, partition.qcow2  partition image: an ext4 root file system with
                                    /boot/vmlinuz-VERSION and /boot/initrd.img-VERSION (plus
                                    /boot/vmlinuz and /boot/initrd.img links), no boot loader
    vmlinuz, initrd.img             the kernel and initramfs inside both (for netboot of a
                                    partition image)
    NAME.sha256                     `sha256sum` line of each image, next to it
    build.json                      inputs (packages, tools, sources) and checksums

Both images boot the same initramfs, whose /init (init.sh) is a tiny tenant OS: DHCP on the first
NIC, hostname and node UUID from a config-2 config drive, and "booted HOSTNAME UUID" reported over
TCP to the DHCP router on REPORT_PORT. When the config drive holds enclume/session-service.json
(a direct deploy with ENCLUME_SESSION_SERVICE_ENABLED), /init then starts the session service's
busybox port (session_service/enclume-session-service.sh, shipped as
/bin/enclume-session-service; docs/session-service.md).

The output is reproducible: fixed UUIDs, volume IDs, hash seed and timestamps, files in a fixed
order; the same packages, tools and sources give the same bytes. No mount or loop device is used
(mkfs.fat + syslinux + mtools for the FAT partition, `mke2fs -d` for ext4). UEFI firmware
boots the whole-disk image from the removable-media path of its FAT partition (no NVRAM entry
needed), which holds systemd-boot (from systemd-boot-efi) and one loader entry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ramdisk import cpio, debs, modules
from ramdisk.buildcache import (
    DEFAULT_CACHE_DIR,
    exclusive,
    file_sha256,
    fingerprint,
)
from ramdisk.testimages import mbr
from ramdisk.tree import cpio_entries

PACKAGE_DIR = Path(__file__).resolve().parent
SESSION_SERVICE = PACKAGE_DIR.parents[1] / "session_service" / "enclume-session-service.sh"
OUTPUT_NAME = "testimages"
MARKER = "ENCLUME-TESTIMAGE"
REPORT_PORT = 7070
BUSYBOX_PACKAGE = "busybox-static"
MBR_PACKAGE = "syslinux-common"
MBR_CODE = "usr/lib/syslinux/mbr/mbr.bin"
UEFI_LOADER_PACKAGE = "systemd-boot-efi"
UEFI_LOADER = "usr/lib/systemd/boot/efi/systemd-bootx64.efi"
# Host tools of the build (Debian packages installed by `make deps`).
TOOLS = {"mkfs.fat": "dosfstools", "syslinux": "syslinux", "mcopy": "mtools", "mmd": "mtools",
         "mke2fs": "e2fsprogs", "debugfs": "e2fsprogs",
         "qemu-img": "qemu-utils"}
# Loaded by /init in this order: virtio PCI transport, NIC and disks, the config drive's file
# systems (ISO9660 or vfat with its code pages), the ACPI power button as an input device.
KERNEL_MODULES = ("virtio_pci", "virtio_net", "virtio_blk", "isofs", "vfat", "nls_cp437",
                  "nls_utf8", "nls_ascii", "nls_iso8859_1", "button", "evdev")
DEPMOD_OUTPUTS = ("modules.dep", "modules.alias", "modules.symbols")

VMLINUZ = "vmlinuz"
INITRD = "initrd.img"
DISK_RAW, DISK_QCOW2 = "disk.raw", "disk.qcow2"
PARTITION_RAW, PARTITION_QCOW2 = "partition.img", "partition.qcow2"
IMAGES = (DISK_RAW, DISK_QCOW2, PARTITION_RAW, PARTITION_QCOW2)
OUTPUTS = (VMLINUZ, INITRD, *IMAGES)
MANIFEST_NAME = "build.json"

MIB = 1 << 20
BOOT_PARTITION_BYTES = 31 * MIB  # + 1 MiB before it: a 32 MiB disk
ROOT_FILESYSTEM_BYTES = 32 * MIB
# Fixed identities, so that the same inputs give the same bytes.
EPOCH = 946684800  # 2000-01-01T00:00:00Z: file times inside the images (FAT starts in 1980)
DISK_SIGNATURE = 0x454E434C  # "ENCL"
FAT_VOLUME_ID = "454e434c"
FAT_LABEL = "ENCLUMEBOOT"
ROOT_UUID = "5c1e0d7a-7e57-4a9e-8d15-e4c1b0e7ad00"
ROOT_LABEL = "enclume-root"
KERNEL_APPEND = "console=ttyS0,115200n8"
TTY_MAJOR, CONSOLE_MINOR = 5, 1


class ImageBuildError(debs.DebError):
    """A test image cannot be built; the message says what is missing or failed."""


@dataclass(frozen=True)
class BuiltTestImages:
    directory: Path
    kernel_version: str
    build_seconds: float  # how long the build that made these files took

    @property
    def disk_raw(self) -> Path:
        return self.directory / DISK_RAW

    @property
    def disk_qcow2(self) -> Path:
        return self.directory / DISK_QCOW2

    @property
    def partition_raw(self) -> Path:
        return self.directory / PARTITION_RAW

    @property
    def partition_qcow2(self) -> Path:
        return self.directory / PARTITION_QCOW2

    @property
    def vmlinuz(self) -> Path:
        return self.directory / VMLINUZ

    @property
    def initrd(self) -> Path:
        return self.directory / INITRD

    def checksum_file(self, image: Path) -> Path:
        return image.with_name(image.name + ".sha256")


def source_files() -> list[Path]:
    return sorted([*PACKAGE_DIR.glob("*.py"), *PACKAGE_DIR.glob("*.sh"),
                   PACKAGE_DIR / "udhcpc.script", SESSION_SERVICE, Path(cpio.__file__),
                   Path(debs.__file__),
                   Path(modules.__file__)])


def _run(args: list[str], what: str, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False,
                              env={**os.environ, **(env or {})})
    except FileNotFoundError as exc:
        raise ImageBuildError(f"{what}: {args[0]} is not installed (run `make deps`)") from exc
    if done.returncode != 0:
        raise ImageBuildError(f"{what} failed ({done.returncode}): "
                              f"{(done.stderr or done.stdout).strip()}")
    return done.stdout


def check_tools() -> dict[str, str]:
    """Versions of the host packages the build runs (recorded in the manifest)."""
    missing = [f"{tool} ({package})" for tool, package in TOOLS.items()
               if shutil.which(tool) is None]
    if missing:
        raise ImageBuildError(f"missing build tools: {', '.join(missing)}; run `make deps`")
    versions = {}
    for package in sorted(set(TOOLS.values())):
        versions[package] = _run(["dpkg-query", "-W", "-f=${Version}", package],
                                 f"reading the version of {package}").strip()
    return versions


# -- the initramfs ----------------------------------------------------------------------------

def _template(name: str, kernel_version: str) -> bytes:
    text = (PACKAGE_DIR / name).read_text()
    return (text.replace("@MARKER@", MARKER).replace("@REPORT_PORT@", str(REPORT_PORT))
            .replace("@BOOT_LABEL@", FAT_LABEL)
            .replace("@KERNEL_VERSION@", kernel_version).encode())


def _write(root: Path, path: str, data: bytes, executable: bool = False) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    target.chmod(0o755 if executable else 0o644)


def _initramfs_root(root: Path, busybox: bytes, kernel_modules: modules.KernelModules) -> None:
    version = kernel_modules.version
    _write(root, "bin/busybox", busybox, executable=True)
    _write(root, "init", _template("init.sh", version), executable=True)
    _write(root, "etc/udhcpc.script", _template("udhcpc.script", version), executable=True)
    _write(root, "etc/acpi/PWRF/00000080", _template("power-button.sh", version),
           executable=True)
    _write(root, "bin/enclume-session-service", SESSION_SERVICE.read_bytes(), executable=True)
    _write(root, "etc/modules", "".join(f"{name}\n" for name in KERNEL_MODULES).encode())
    for path, data in sorted(kernel_modules.files.items()):
        _write(root, path, data)
    for directory in ("dev", "proc", "sys", "run", "tmp", "mnt"):
        (root / directory).mkdir(exist_ok=True)
    _run([str(root / "bin/busybox"), "depmod", "-b", str(root), version], "depmod")
    for index in DEPMOD_OUTPUTS:  # written in directory order, which differs between machines
        path = root / modules.MODULES_DIR / version / index
        path.write_text("".join(sorted(path.read_text().splitlines(keepends=True))))


def _write_initramfs(root: Path, out: Path) -> None:
    entries = cpio_entries(root)
    entries.append(cpio.char_device("dev/console", TTY_MAJOR, CONSOLE_MINOR))
    entries.sort(key=lambda entry: entry.path)
    cpio.write_gzipped_newc(entries, out)


# -- the images -------------------------------------------------------------------------------

def _fixed_times(root: Path) -> None:
    for directory, subdirectories, names in os.walk(root):
        for name in [*subdirectories, *names]:
            os.utime(Path(directory, name), (EPOCH, EPOCH), follow_symlinks=False)
    os.utime(root, (EPOCH, EPOCH))


def syslinux_config() -> str:
    return "\n".join(["DEFAULT enclume", "PROMPT 0", "TIMEOUT 0", "", "LABEL enclume",
                      f"  LINUX /{VMLINUZ}", f"  INITRD /{INITRD}",
                      f"  APPEND {KERNEL_APPEND}", ""])


def systemd_boot_files() -> dict[str, str]:
    """systemd-boot's configuration: boot the one entry at once, no menu."""
    return {"loader/loader.conf": "default enclume.conf\ntimeout 0\n",
            "loader/entries/enclume.conf": "\n".join([
                "title Enclume test image", f"linux /{VMLINUZ}", f"initrd /{INITRD}",
                f"options {KERNEL_APPEND}", ""])}


def _boot_partition(work: Path, vmlinuz: Path, initrd: Path, uefi_loader: bytes,
                    out: Path) -> None:
    """A FAT16 file system with SYSLINUX installed, its config, systemd-boot at the UEFI
    removable-media path with its config, the kernel and initramfs."""
    env = {"SOURCE_DATE_EPOCH": str(EPOCH), "MTOOLS_SKIP_CHECK": "1"}
    hidden_sectors = str(mbr.PARTITION_START_SECTOR)  # where the partition starts on the disk
    _run(["mkfs.fat", "-C", "-F", "16", "--invariant", "-i", FAT_VOLUME_ID, "-n", FAT_LABEL,
          "-h", hidden_sectors, str(out), str(BOOT_PARTITION_BYTES // 1024)],
         "making the FAT file system", env)
    _run(["syslinux", "--install", str(out)], "installing SYSLINUX", env)
    files = work / "boot-files"
    files.mkdir()
    (files / "syslinux.cfg").write_text(syslinux_config())
    shutil.copyfile(vmlinuz, files / VMLINUZ)
    shutil.copyfile(initrd, files / INITRD)
    _write(files, "EFI/BOOT/BOOTX64.EFI", uefi_loader)
    for path, text in systemd_boot_files().items():
        _write(files, path, text.encode())
    _fixed_times(files)
    # Directories and files one by one in sorted order (`mcopy -s` would follow the build
    # host's directory order, and the bytes would depend on it).
    paths = sorted(path.relative_to(files).as_posix() for path in files.rglob("*"))
    directories = [path for path in paths if (files / path).is_dir()]
    if directories:
        _run(["mmd", "-i", str(out), *(f"::/{path}" for path in directories)],
             "making the boot loaders' directories", env)
    for path in paths:
        if not (files / path).is_dir():
            _run(["mcopy", "-m", "-i", str(out), str(files / path), f"::/{path}"],
                 f"copying {path} into the FAT file system", env)


def _root_filesystem(work: Path, vmlinuz: Path, initrd: Path, kernel_version: str,
                     out: Path) -> None:
    """An ext4 file system holding /boot (what a boot loader installed later needs)."""
    root = work / "rootfs"
    boot = root / "boot"
    boot.mkdir(parents=True)
    shutil.copyfile(vmlinuz, boot / f"vmlinuz-{kernel_version}")
    shutil.copyfile(initrd, boot / f"initrd.img-{kernel_version}")
    (boot / VMLINUZ).symlink_to(f"vmlinuz-{kernel_version}")
    (boot / INITRD).symlink_to(f"initrd.img-{kernel_version}")
    _write(root, "etc/enclume-testimage", f"Enclume test image, kernel {kernel_version}\n"
                                          .encode())
    _fixed_times(root)
    _run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", ROOT_LABEL, "-U", ROOT_UUID,
          "-E", f"hash_seed={ROOT_UUID},root_owner=0:0", "-d", str(root), str(out),
          f"{ROOT_FILESYSTEM_BYTES // 1024}k"],
         "making the ext4 root file system", {"E2FSPROGS_FAKE_TIME": str(EPOCH)})
    # mke2fs -d copies each file's ctime (which user space cannot set) and the atime its own
    # reading of the directories just changed: fix both in the image.
    paths = ["/", *sorted("/" + path.relative_to(root).as_posix() for path in root.rglob("*"))]
    script = work / "debugfs.commands"
    script.write_text("".join(f"set_inode_field {path} {field} @{EPOCH}\n"
                              for path in paths for field in ("ctime", "atime")))
    _run(["debugfs", "-w", "-f", str(script), str(out)], "fixing the ext4 inode times",
         {"E2FSPROGS_FAKE_TIME": str(EPOCH)})


def _to_qcow2(raw: Path, out: Path) -> None:
    _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out)],
         f"converting {raw.name} to qcow2")


# -- the build --------------------------------------------------------------------------------

def _kernel_deb(debs_dir: Path) -> Path:
    return debs.cached_kernel_deb(debs_dir) or debs.download(debs.resolve_kernel_package(),
                                                            debs_dir)


def _from_manifest(out_dir: Path, kernel_deb: str | None) -> BuiltTestImages | None:
    """The build in `out_dir` if it is complete, current and made from that kernel package."""
    try:
        manifest = json.loads((out_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("sources") != fingerprint(source_files()) or (
            kernel_deb is not None and manifest.get("kernel_deb") != kernel_deb):
        return None
    for name in OUTPUTS:
        path = out_dir / name
        if not path.is_file() or file_sha256(path) != manifest["sha256"].get(name):
            return None
    return BuiltTestImages(out_dir, manifest["kernel_version"], manifest["build_seconds"])


def build(cache_dir: Path = DEFAULT_CACHE_DIR) -> BuiltTestImages:
    """Build unconditionally (downloading the packages into <cache>/debs when missing)."""
    started = time.monotonic()
    tools = check_tools()
    debs_dir, out_dir = cache_dir / "debs", cache_dir / OUTPUT_NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel_deb = _kernel_deb(debs_dir)
    busybox_deb = debs.download(BUSYBOX_PACKAGE, debs_dir)
    mbr_deb = debs.download(MBR_PACKAGE, debs_dir)
    uefi_loader_deb = debs.download(UEFI_LOADER_PACKAGE, debs_dir)
    kernel_files = debs.read_members(kernel_deb, ["boot/vmlinuz-*"])
    if len(kernel_files) != 1:
        raise ImageBuildError(f"{kernel_deb.name} holds {len(kernel_files)} kernels, "
                              f"expected one")
    [(kernel_path, vmlinuz)] = kernel_files.items()
    kernel_version = kernel_path.removeprefix("boot/vmlinuz-")
    kernel_modules = modules.select(kernel_deb, list(KERNEL_MODULES))
    if kernel_modules.version != kernel_version:
        raise ImageBuildError(f"{kernel_deb.name}: kernel {kernel_version} but modules of "
                              f"{kernel_modules.version}")
    busybox = debs.read_members(busybox_deb, ["bin/busybox"])["bin/busybox"]
    mbr_code = debs.read_members(mbr_deb, [MBR_CODE])[MBR_CODE]
    uefi_loader = debs.read_members(uefi_loader_deb, [UEFI_LOADER])[UEFI_LOADER]

    with tempfile.TemporaryDirectory(prefix=".build-", dir=out_dir) as work_name:
        work = Path(work_name)
        (work / VMLINUZ).write_bytes(vmlinuz)
        initramfs_root = work / "initramfs"
        _initramfs_root(initramfs_root, busybox, kernel_modules)
        _write_initramfs(initramfs_root, work / INITRD)
        _boot_partition(work, work / VMLINUZ, work / INITRD, uefi_loader, work / "boot.fat")
        mbr.write_disk(work / DISK_RAW, mbr_code[:mbr.BOOT_CODE_SIZE], DISK_SIGNATURE,
                       work / "boot.fat", mbr.TYPE_FAT16_LBA)
        _root_filesystem(work, work / VMLINUZ, work / INITRD, kernel_version,
                         work / PARTITION_RAW)
        _to_qcow2(work / DISK_RAW, work / DISK_QCOW2)
        _to_qcow2(work / PARTITION_RAW, work / PARTITION_QCOW2)
        checksums = {name: file_sha256(work / name) for name in OUTPUTS}
        for name in IMAGES:
            (work / f"{name}.sha256").write_text(f"{checksums[name]}  {name}\n")
        for name in (*OUTPUTS, *(f"{name}.sha256" for name in IMAGES)):
            (work / name).replace(out_dir / name)

    manifest = {
        "kernel_version": kernel_version,
        "kernel_deb": kernel_deb.name,
        "packages": {deb.name: file_sha256(deb)
                     for deb in (kernel_deb, busybox_deb, mbr_deb, uefi_loader_deb)},
        "tools": tools,
        "kernel_modules": list(kernel_modules.names),
        "report_port": REPORT_PORT,
        "sources": fingerprint(source_files()),
        "sizes": {name: (out_dir / name).stat().st_size for name in OUTPUTS},
        "sha256": checksums,
        "build_seconds": round(time.monotonic() - started, 2),
    }
    partial = out_dir / f".{MANIFEST_NAME}.{os.getpid()}"
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.replace(out_dir / MANIFEST_NAME)
    return BuiltTestImages(out_dir, kernel_version, manifest["build_seconds"])


def ensure_built(cache_dir: Path = DEFAULT_CACHE_DIR, force: bool = False) -> BuiltTestImages:
    """The cached build when it is current, else a new one; safe to call from several processes."""
    out_dir = cache_dir / OUTPUT_NAME
    with exclusive(cache_dir / f"{OUTPUT_NAME}.lock"):
        kernel_deb = debs.cached_kernel_deb(cache_dir / "debs")
        current = None if force else _from_manifest(
            out_dir, kernel_deb.name if kernel_deb else None)
        return current or build(cache_dir)
