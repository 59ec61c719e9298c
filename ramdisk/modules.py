"""Kernel modules for the ramdisk: the wanted ones and everything they depend on, taken from the
kernel package (uncompressed .ko files, without modules.dep: depmod makes it in the root)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from ramdisk import debs, elf

MODULES_DIR = "lib/modules/"
# Kept with the modules: what depmod and modprobe need to know about built-in ones and order.
MODULE_INDEXES = ("modules.builtin", "modules.builtin.modinfo", "modules.order")


class ModuleError(debs.DebError):
    """A wanted module is not in the kernel package, or a dependency cannot be found."""


@dataclass(frozen=True)
class KernelModules:
    version: str  # e.g. 6.1.0-50-amd64
    files: dict[str, bytes]  # package path (lib/modules/VERSION/...) -> contents
    names: tuple[str, ...]  # every module taken (wanted and dependencies), sorted


def module_name(path: str) -> str:
    """The name the kernel knows a module file by: "nvme-core.ko" -> "nvme_core"."""
    return posixpath.basename(path).removesuffix(".ko").replace("-", "_")


def _is_module(path: str) -> bool:
    return path.startswith(MODULES_DIR) and path.endswith(".ko")


def _kernel_version(path: str) -> str:
    return path.removeprefix(MODULES_DIR).split("/", 1)[0]


def closure(wanted: list[str], dependencies: dict[str, list[str]]) -> list[str]:
    """`wanted` and, recursively, what they depend on (sorted). ModuleError for a name that
    is not in `dependencies`, saying who wanted it."""
    taken: set[str] = set()
    pending = [(module_name(name), "the ramdisk") for name in wanted]
    while pending:
        name, wanted_by = pending.pop()
        if name in taken:
            continue
        if name not in dependencies:
            raise ModuleError(f"kernel module {name} (needed by {wanted_by}) is not in the "
                              f"kernel package")
        taken.add(name)
        pending += [(module_name(dependency), name) for dependency in dependencies[name]]
    return sorted(taken)


def select(kernel_deb: Path, wanted: list[str]) -> KernelModules:
    """The module files of `wanted` and their dependencies, plus the module indexes.

    Two passes over the package: the first reads every module's dependencies (its data is
    dropped at once), the second keeps only the files taken."""
    dependencies: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    versions: set[str] = set()
    for member in debs.iter_tree(kernel_deb, _is_module):
        if member.kind != "file":
            continue
        name = module_name(member.path)
        try:
            dependencies[name] = elf.module_dependencies(member.data)
        except elf.ElfError as exc:
            raise ModuleError(f"{member.path} in {kernel_deb.name}: {exc}") from exc
        paths[name] = member.path
        versions.add(_kernel_version(member.path))
    if len(versions) != 1:
        raise ModuleError(f"{kernel_deb.name} has modules of {len(versions)} kernel versions "
                          f"({', '.join(sorted(versions))}), expected one")
    [version] = versions
    names = closure(wanted, dependencies)
    keep = {paths[name] for name in names} | {
        f"{MODULES_DIR}{version}/{index}" for index in MODULE_INDEXES}
    files = {member.path: member.data
             for member in debs.iter_tree(kernel_deb, keep.__contains__)
             if member.kind == "file"}
    missing = sorted(keep - files.keys())
    if missing:
        raise ModuleError(f"{kernel_deb.name} lacks {', '.join(missing)}")
    return KernelModules(version, files, tuple(names))
