"""Build the lab's test kernel into <cache>/testkernel, from packages cached in <cache>/debs.

The output is reproducible: the same packages and sources give the same bytes. A manifest
(build.json) records the inputs and checksums; a build is reused while it matches the sources.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ramdisk import cpio, debs
from ramdisk.buildcache import DEFAULT_CACHE_DIR, exclusive, write_atomically
from ramdisk.buildcache import sha256 as _sha256

MARKER = "ENCLUME-TESTKERNEL-BOOTED"
SOURCES = [Path(__file__).with_name("build.py"), Path(cpio.__file__), Path(debs.__file__),
           Path(__file__).with_name("init.sh")]
BUSYBOX_PACKAGE = "busybox-static"
VMLINUZ_NAME = "vmlinuz"
INITRAMFS_NAME = "initramfs.gz"
MANIFEST_NAME = "build.json"
TTY_MAJOR, CONSOLE_MINOR = 5, 1  # /dev/console, needed before devtmpfs is mounted


@dataclass(frozen=True)
class BuiltTestKernel:
    vmlinuz: Path
    initramfs: Path
    kernel_version: str
    build_seconds: float  # how long the build that made these files took


def _sources_fingerprint() -> str:
    return _sha256(b"".join(_sha256(path.read_bytes()).encode() for path in SOURCES))


def _initramfs_entries(busybox: bytes) -> list[cpio.Entry]:
    init = SOURCES[3].read_text().replace("@MARKER@", MARKER)
    return [
        cpio.directory("bin"),
        cpio.regular_file("bin/busybox", busybox, executable=True),
        cpio.directory("dev"),
        cpio.char_device("dev/console", TTY_MAJOR, CONSOLE_MINOR),
        cpio.regular_file("init", init.encode(), executable=True),
        cpio.directory("proc"),
        cpio.directory("sys"),
    ]


def _from_manifest(out_dir: Path) -> BuiltTestKernel | None:
    """The build in `out_dir` if it is complete and was made from the current sources."""
    try:
        manifest = json.loads((out_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("sources") != _sources_fingerprint():
        return None
    for name in (VMLINUZ_NAME, INITRAMFS_NAME):
        path = out_dir / name
        if not path.is_file() or _sha256(path.read_bytes()) != manifest["sha256"].get(name):
            return None
    return BuiltTestKernel(out_dir / VMLINUZ_NAME, out_dir / INITRAMFS_NAME,
                           manifest["kernel_version"], manifest["build_seconds"])


def build(cache_dir: Path = DEFAULT_CACHE_DIR) -> BuiltTestKernel:
    """Build unconditionally (downloading the packages into <cache>/debs when missing)."""
    started = time.monotonic()
    debs_dir, out_dir = cache_dir / "debs", cache_dir / "testkernel"
    kernel_deb = debs.cached_kernel_deb(debs_dir) or debs.download(
        debs.resolve_kernel_package(), debs_dir)
    busybox_deb = debs.download(BUSYBOX_PACKAGE, debs_dir)
    kernel_files = debs.read_members(kernel_deb, ["boot/vmlinuz-*"])
    if len(kernel_files) != 1:
        raise debs.DebError(f"{kernel_deb.name} holds {len(kernel_files)} kernels, expected one")
    [(kernel_path, vmlinuz)] = kernel_files.items()
    busybox = debs.read_members(busybox_deb, ["bin/busybox"])["bin/busybox"]

    out_dir.mkdir(parents=True, exist_ok=True)
    initramfs_path = out_dir / INITRAMFS_NAME
    partial = out_dir / f".{INITRAMFS_NAME}.{os.getpid()}"
    cpio.write_gzipped_newc(_initramfs_entries(busybox), partial)
    initramfs = partial.read_bytes()
    partial.replace(initramfs_path)
    write_atomically(out_dir / VMLINUZ_NAME, vmlinuz)
    kernel_version = kernel_path.removeprefix("boot/vmlinuz-")
    seconds = round(time.monotonic() - started, 2)
    manifest = {
        "kernel_version": kernel_version,
        "kernel_deb": kernel_deb.name,
        "busybox_deb": busybox_deb.name,
        "sources": _sources_fingerprint(),
        "sha256": {VMLINUZ_NAME: _sha256(vmlinuz), INITRAMFS_NAME: _sha256(initramfs)},
        "build_seconds": seconds,
    }
    write_atomically(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2).encode() + b"\n")
    return BuiltTestKernel(out_dir / VMLINUZ_NAME, initramfs_path, kernel_version, seconds)


def ensure_built(cache_dir: Path = DEFAULT_CACHE_DIR, force: bool = False) -> BuiltTestKernel:
    """The cached build when it is current, else a new one; safe to call from several processes."""
    out_dir = cache_dir / "testkernel"
    with exclusive(cache_dir / "testkernel.lock"):
        current = None if force else _from_manifest(out_dir)
        return current or build(cache_dir)
