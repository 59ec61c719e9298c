"""Issue #6: the deploy ramdisk built from Debian packages is complete, within its size budget,
reproducible, and rebuilt only when its inputs change.

The build of the cache (`make ramdisk`) is unpacked and its programs run in a chroot: the
ramdisk's own dynamic loader must find every library of every program and Python extension,
its Python must import the agent (with zstandard's C extension) and rtslib-fb, and the tools
the agent runs must start.
(QEMU boots it in tests/lab/test_ramdisk_boot.py.)
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ramdisk import build, contents, cpio, elf
from ramdisk.buildcache import file_sha256

pytestmark = [pytest.mark.integration]

MIB = 1 << 20
BUDGET_BYTES = 40 * MIB  # kernel + ramdisk, compressed (issue #6)
LOADER = "/usr/lib64/ld-linux-x86-64.so.2"
TOOLS = [["qemu-img", "--version"], ["sfdisk", "--version"], ["mkfs.ext4", "-V"],
         ["mkfs.vfat", "--help"], ["extlinux", "--version"], ["losetup", "--version"],
         ["mount", "--version"], ["blkid", "-V"], ["wipefs", "--version"],
         ["lsblk", "--version"], ["mkswap", "--version"], ["blockdev", "--help"],
         ["blkdiscard", "--version"], ["e2fsck", "-V"], ["resize2fs"]]
BUSYBOX_APPLETS = ["sh", "udhcpc", "modprobe", "ip", "init", "poweroff", "reboot", "dd"]
PYTHON_CHECK = """
import ctypes.util, ssl
import agent.main, agent.capture_blocks, rtslib_fb, pyudev
print(ctypes.util.find_library("udev"))
print(agent.capture_blocks.zstandard.backend)
print(ssl.create_default_context().cert_store_stats()["x509_ca"])
print(agent.main.__cached__)
"""


@pytest.fixture(scope="module")
def built() -> build.BuiltRamdisk:
    return build.ensure_built()


@pytest.fixture(scope="module")
def root(built: build.BuiltRamdisk, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ramdisk unpacked, with the /dev/null a booted one has (devtmpfs)."""
    if os.geteuid() != 0:
        pytest.fail("these checks chroot into the ramdisk: run them as root")
    unpacked = tmp_path_factory.mktemp("ramdisk") / "root"
    archive = subprocess.run(["zstd", "-dc", str(built.initramfs)], capture_output=True,
                             check=True).stdout
    cpio.unpack(io.BytesIO(archive), unpacked)
    os.mknod(unpacked / "dev/null", 0o666 | 0o020000, os.makedev(1, 3))
    return unpacked


def _in_root(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True,
                          timeout=60, check=False,
                          env={"PATH": "/usr/sbin:/usr/bin", "LC_ALL": "C"})


def test_kernel_and_ramdisk_fit_the_budget_and_the_manifest_lists_the_inputs(
        built: build.BuiltRamdisk) -> None:
    manifest = built.manifest_data()
    total = built.vmlinuz.stat().st_size + built.initramfs.stat().st_size
    assert total < BUDGET_BYTES, f"{total / MIB:.1f} MiB"
    assert manifest["sha256"]["initramfs.zst"] == file_sha256(built.initramfs)
    assert manifest["sha256"]["vmlinuz"] == file_sha256(built.vmlinuz)
    debs_dir = built.vmlinuz.parents[1] / "debs"
    for name, package in manifest["packages"].items():
        assert package["version"] and package["paths"], name
        assert file_sha256(debs_dir / package["deb"]) == package["sha256"], name
    for selection in contents.PACKAGES:
        assert selection.package in manifest["packages"]
    assert set(contents.KERNEL_MODULES) <= set(manifest["kernel_modules"])
    assert manifest["kernel_deb"]["version"]


def test_every_program_and_library_loads_with_the_ramdisk_own_libraries(root: Path) -> None:
    checked, failures = set(), []
    for directory in ("usr/bin", "usr/sbin", "usr/lib/x86_64-linux-gnu",
                      "usr/lib/python3.11/lib-dynload"):
        for path in sorted((root / directory).iterdir()):
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            if not elf.is_x86_64_elf(data) or elf.dynamic(data) is None:
                continue
            done = _in_root(root, LOADER, "--list", "/" + path.relative_to(root).as_posix())
            checked.add(path.name)
            if done.returncode != 0 or "not found" in done.stdout:
                failures.append(f"{path.relative_to(root)}: {done.stdout}{done.stderr}")
    assert {"python3.11", "qemu-img", "sfdisk", "mke2fs", "extlinux", "losetup", "libc.so.6",
            "_ssl.cpython-311-x86_64-linux-gnu.so"} <= checked
    assert failures == []


def test_the_agent_and_rtslib_import_and_find_what_they_load_at_run_time(root: Path) -> None:
    done = _in_root(root, "/usr/bin/python3", "-c", PYTHON_CHECK)
    assert done.returncode == 0, done.stderr
    udev, zstd_backend, certificates, cached = done.stdout.split()
    assert udev == "libudev.so.1"  # pyudev finds it through `ldconfig -p`
    assert zstd_backend == "cext"  # captured blocks are compressed, without cffi
    assert int(certificates) > 100  # https image URLs can be verified
    assert cached.endswith(".pyc") and (root / cached.lstrip("/")).is_file()


def test_the_tools_the_agent_runs_start(root: Path) -> None:
    for argv in TOOLS:
        done = _in_root(root, *argv)
        assert "not found" not in done.stderr and "error while loading" not in done.stderr, argv
        assert done.stdout or done.stderr, argv
    for applet in BUSYBOX_APPLETS:
        link = root / "usr/bin" / applet
        if not link.is_symlink():
            link = root / "usr/sbin" / applet
        assert os.readlink(link) == "/usr/bin/busybox", applet
    # the real programs win over busybox's applets of the same name
    assert not (root / "usr/bin/mount").is_symlink()
    assert not (root / "usr/sbin/mkswap").is_symlink()


def test_boot_files_and_module_indexes(root: Path) -> None:
    init = root / "init"
    assert os.access(init, os.X_OK) and init.read_text().startswith("#!/bin/sh")
    assert "::respawn:/usr/bin/enclume-agent" in (root / "etc/inittab").read_text()
    [modules_dir] = (root / "usr/lib/modules").iterdir()
    dependencies = dict(line.split(":", 1) for line in
                        (modules_dir / "modules.dep").read_text().splitlines())
    [(name, iscsi)] = [(name, deps) for name, deps in dependencies.items()
                       if name.endswith("/iscsi_target_mod.ko")]
    assert "target_core_mod.ko" in iscsi
    for module in [name, *iscsi.split()]:
        assert (modules_dir / module).is_file(), module
    aliases = (modules_dir / "modules.alias").read_text()
    assert "alias fs-xfs xfs" in aliases and "alias crypto-crc32c crc32c_generic" in aliases
    assert (root / "etc/enclume/modules").read_text().split() == list(contents.BOOT_MODULES)


def test_a_build_is_reused_until_an_input_changes(built: build.BuiltRamdisk,
                                                  tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "ramdisk").mkdir(parents=True)
    (cache / "debs").symlink_to(built.vmlinuz.parents[1] / "debs")
    for path in (built.vmlinuz, built.initramfs, built.manifest):
        shutil.copyfile(path, cache / "ramdisk" / path.name)
    current = build.current_build(cache)
    assert current is not None and current.initramfs == cache / "ramdisk" / "initramfs.zst"

    manifest = json.loads(built.manifest.read_text())
    manifest["packages"]["qemu-utils"]["sha256"] = "0" * 64  # another qemu-utils package
    (cache / "ramdisk/build.json").write_text(json.dumps(manifest))
    assert build.current_build(cache) is None

    shutil.copyfile(built.manifest, cache / "ramdisk/build.json")
    manifest["sources"] = "0" * 64  # edited sources (of the builder or of the agent)
    (cache / "ramdisk/build.json").write_text(json.dumps(manifest))
    assert build.current_build(cache) is None

    shutil.copyfile(built.manifest, cache / "ramdisk/build.json")
    with (cache / "ramdisk/initramfs.zst").open("ab") as damaged:
        damaged.write(b"\0")
    assert build.current_build(cache) is None


@pytest.mark.slow
def test_the_same_inputs_build_the_same_bytes(built: build.BuiltRamdisk, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "debs").symlink_to(built.vmlinuz.parents[1] / "debs")
    for _attempt in range(2):  # someone may edit the agent meanwhile: compare like with like
        reference = build.ensure_built()
        again = build.build(cache)
        if again.manifest_data()["sources"] == reference.manifest_data()["sources"]:
            break
    assert again.manifest_data()["sha256"] == reference.manifest_data()["sha256"]
    assert again.manifest_data()["packages"] == reference.manifest_data()["packages"]
