"""Choosing kernel modules for the ramdisk: the wanted ones and what they depend on, read from
the modules themselves in a kernel package (one built here with dpkg-deb)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ramdisk import modules
from tests.support.elf_files import build_deb, kernel_module

VERSION = "6.1.0-99-amd64"
BASE = f"lib/modules/{VERSION}"


def test_closure_follows_dependencies_and_normalizes_names() -> None:
    dependencies = {"iscsi_target_mod": ["target_core_mod"], "target_core_mod": ["configfs"],
                    "configfs": [], "nvme": ["nvme_core"], "nvme_core": [], "unused": []}
    assert modules.closure(["iscsi-target-mod", "nvme"], dependencies) == [
        "configfs", "iscsi_target_mod", "nvme", "nvme_core", "target_core_mod"]


def test_a_missing_module_names_who_needs_it() -> None:
    with pytest.raises(modules.ModuleError, match=r"libcrc32c \(needed by xfs\)"):
        modules.closure(["xfs"], {"xfs": ["libcrc32c"]})
    with pytest.raises(modules.ModuleError, match=r"nosuch \(needed by the ramdisk\)"):
        modules.closure(["nosuch"], {})


def _kernel_deb(tmp_path: Path, extra: dict[str, bytes | str] | None = None) -> Path:
    files: dict[str, bytes | str] = {
        f"{BASE}/kernel/fs/xfs/xfs.ko": kernel_module(["name=xfs", "depends=libcrc32c"]),
        f"{BASE}/kernel/lib/libcrc32c.ko": kernel_module(["name=libcrc32c", "depends="]),
        f"{BASE}/kernel/drivers/nvme/host/nvme-core.ko": kernel_module(["depends="]),
        f"{BASE}/kernel/drivers/nvme/host/nvme.ko": kernel_module(["depends=nvme-core"]),
        f"{BASE}/kernel/sound/big.ko": kernel_module(["depends="]) + b"\0" * 100_000,
        f"{BASE}/modules.builtin": "kernel/fs/ext4/ext4.ko\n",
        f"{BASE}/modules.builtin.modinfo": "",
        f"{BASE}/modules.order": "kernel/fs/xfs/xfs.ko\n",
        f"boot/vmlinuz-{VERSION}": b"kernel",
        **(extra or {}),
    }
    return build_deb(tmp_path, "linux-image-test", files)


def test_only_the_taken_modules_and_the_indexes_come_out_of_the_package(tmp_path: Path) -> None:
    taken = modules.select(_kernel_deb(tmp_path), ["xfs", "nvme"])
    assert taken.version == VERSION
    assert taken.names == ("libcrc32c", "nvme", "nvme_core", "xfs")
    assert sorted(taken.files) == sorted([
        f"{BASE}/kernel/fs/xfs/xfs.ko", f"{BASE}/kernel/lib/libcrc32c.ko",
        f"{BASE}/kernel/drivers/nvme/host/nvme-core.ko",
        f"{BASE}/kernel/drivers/nvme/host/nvme.ko", f"{BASE}/modules.builtin",
        f"{BASE}/modules.builtin.modinfo", f"{BASE}/modules.order"])
    assert taken.files[f"{BASE}/modules.builtin"] == b"kernel/fs/ext4/ext4.ko\n"


def test_modules_of_two_kernel_versions_are_refused(tmp_path: Path) -> None:
    deb = _kernel_deb(tmp_path, {"lib/modules/5.10.0-1-amd64/kernel/x.ko":
                                 kernel_module(["depends="])})
    with pytest.raises(modules.ModuleError, match="2 kernel versions"):
        modules.select(deb, ["xfs"])


def test_a_module_that_is_not_elf_is_named(tmp_path: Path) -> None:
    deb = _kernel_deb(tmp_path, {f"{BASE}/kernel/broken.ko": "not a module"})
    with pytest.raises(modules.ModuleError, match=r"broken\.ko"):
        modules.select(deb, ["xfs"])
