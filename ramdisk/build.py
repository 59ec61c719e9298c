"""Build the deploy kernel and ramdisk into <cache>/ramdisk, from packages cached in <cache>/debs.

    kernel:  <cache>/ramdisk/vmlinuz           (Debian's kernel, as packaged)
    ramdisk: <cache>/ramdisk/initramfs.zst     (busybox, python3.11, the agent, tools, modules)
    build:   <cache>/ramdisk/build.json        (package versions and checksums, sizes, sources)

The output is reproducible: the same packages and sources give the same bytes (fixed owners,
times and order in the archive, hash-checked .pyc files). A build is reused while build.json
matches the sources, the cached packages and the output files; docs/ramdisk.md has the details.
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
from typing import Any

from ramdisk import contents, cpio, debs, modules
from ramdisk.assemble import Assembly, AssemblyError
from ramdisk.buildcache import (
    DEFAULT_CACHE_DIR,
    REPO_ROOT,
    exclusive,
    file_sha256,
    fingerprint,
    write_atomically,
)
from ramdisk.tree import Tree, cpio_entries, matches_any, merged_path

PACKAGE_DIR = Path(__file__).resolve().parent
OVERLAY_DIR = PACKAGE_DIR / "rootfs"  # files of the ramdisk itself: /init, inittab, scripts
AGENT_DIR = REPO_ROOT / "agent"
OUTPUT_NAME = "ramdisk"
VMLINUZ_NAME = "vmlinuz"
INITRAMFS_NAME = "initramfs.zst"
MANIFEST_NAME = "build.json"
# zstd: a fifth smaller than gzip -9 and faster to unpack (the kernel does both; xz would cost
# seconds of boot under emulation). Its output does not depend on the thread count.
COMPRESSOR = ("zstd", "-19", "-T0", "-q", "--no-progress", "-f")
PYTHON = "usr/bin/python3.11"
AGENT_TARGET = "usr/lib/python3/dist-packages/agent"
BUSYBOX = "usr/bin/busybox"
LDCONFIG = "usr/sbin/ldconfig"
DEPMOD_OUTPUTS = ("modules.dep", "modules.alias", "modules.symbols")
MODULE_LIST = "etc/enclume/modules"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
CA_SOURCES = "usr/share/ca-certificates/mozilla/*.crt"
# Empty directories the ramdisk needs (mount points, LIO's saved configuration, scratch).
DIRECTORIES = {"dev": 0o755, "proc": 0o555, "sys": 0o555, "run": 0o755, "tmp": 0o1777,
               "root": 0o700, "mnt": 0o755, "var/tmp": 0o1777, "var/log": 0o755,
               "etc/target": 0o755}
SYMLINKS = {
    "usr/bin/python3": "python3.11",
    # OpenSSL (so Python's ssl module) looks for CA certificates under /usr/lib/ssl.
    "usr/lib/ssl/cert.pem": f"/{CA_BUNDLE}",
    "usr/lib/ssl/certs": "/etc/ssl/certs",
}
TTY_MAJOR, CONSOLE_MINOR = 5, 1  # /dev/console: the kernel opens it before /init runs


class BuildError(debs.DebError):
    """The ramdisk cannot be built; the message says what is missing or wrong."""


@dataclass(frozen=True)
class BuiltRamdisk:
    vmlinuz: Path
    initramfs: Path
    manifest: Path
    kernel_version: str
    build_seconds: float  # how long the build that made these files took

    def manifest_data(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.manifest.read_text())
        return data


def source_files() -> list[Path]:
    """What the build is made from besides packages: this package (not the test kernel), the
    ramdisk's own files and the agent."""
    own = list(PACKAGE_DIR.glob("*.py"))
    overlay = [path for path in OVERLAY_DIR.rglob("*") if path.is_file()]
    agent = [path for path in AGENT_DIR.rglob("*.py") if "__pycache__" not in path.parts]
    return sorted([*own, *overlay, *agent])


def _run(args: list[str], what: str, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    except FileNotFoundError as exc:
        raise BuildError(f"{what}: {args[0]} is not installed") from exc
    if done.returncode != 0:
        raise BuildError(f"{what} failed ({done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-2000:]}")
    return done.stdout


# -- filling the tree -------------------------------------------------------------------------

def _add_kernel_modules(tree: Tree, kernel_modules: modules.KernelModules) -> None:
    for path, data in sorted(kernel_modules.files.items()):
        tree.add_file(merged_path(path), data, 0o644, "kernel")
    tree.add_file(MODULE_LIST, "".join(f"{name}\n" for name in contents.BOOT_MODULES).encode())


def _add_busybox_applets(tree: Tree, work_dir: Path) -> int:
    """A symlink to busybox for each applet that no package provides a real program for."""
    busybox = tree.file(BUSYBOX)
    if busybox is None:
        raise BuildError("busybox is missing from the ramdisk")
    binary = work_dir / "busybox"
    binary.write_bytes(busybox.data)
    binary.chmod(0o755)
    added = 0
    for applet in sorted(_run([str(binary), "--list-full"], "busybox --list-full").split()):
        path = merged_path(applet)
        if path.count("/") < 2 or tree.resolve(path) is not None:
            continue  # "linuxrc" and the like, or a real program
        tree.add_symlink(path, f"/{BUSYBOX}")
        added += 1
    return added


def _add_ca_bundle(tree: Tree) -> int:
    """One file of all CA certificates (what update-ca-certificates makes), instead of them."""
    certificates = [(path, node.data) for path, node in tree.files()
                    if matches_any(path, [CA_SOURCES])]
    if not certificates:
        raise BuildError("no CA certificates in the ramdisk (package ca-certificates)")
    tree.add_file(CA_BUNDLE, b"".join(data.rstrip(b"\n") + b"\n" for _, data in certificates))
    for path, _ in certificates:
        tree.remove(path)
    return len(certificates)


def _add_overlay(tree: Tree) -> None:
    for path in sorted(OVERLAY_DIR.rglob("*")):
        if path.is_file():
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            tree.add_file(path.relative_to(OVERLAY_DIR).as_posix(), path.read_bytes(), mode)


def _add_agent(tree: Tree) -> int:
    if not (AGENT_DIR / "main.py").is_file():
        raise BuildError(f"the agent is missing: {AGENT_DIR / 'main.py'} does not exist")
    files = [path for path in source_files() if path.is_relative_to(AGENT_DIR)]
    for path in files:
        tree.add_file(f"{AGENT_TARGET}/{path.relative_to(AGENT_DIR).as_posix()}",
                      path.read_bytes())
    return len(files)


def assemble_tree(debs_dir: Path, kernel_modules: modules.KernelModules,
                  work_dir: Path) -> tuple[Tree, Assembly, dict[str, int]]:
    assembly = Assembly(debs_dir, contents.PRUNED, contents.NOT_NEEDED)
    for selection in contents.PACKAGES:
        assembly.take(selection)
    assembly.complete_libraries()
    problems = assembly.unmet_dependencies() + [
        f"/{path} points nowhere" for path in assembly.dangling_symlinks()]
    if problems:
        raise AssemblyError("the ramdisk's packages are incomplete: " + "; ".join(problems))
    tree = assembly.tree
    _add_kernel_modules(tree, kernel_modules)
    counts = {"ca_certificates": _add_ca_bundle(tree), "agent_files": _add_agent(tree)}
    _add_overlay(tree)
    for path, target in SYMLINKS.items():
        tree.add_symlink(path, target)
    for path, mode in DIRECTORIES.items():
        tree.add_directory(path, mode)
    counts["busybox_applets"] = _add_busybox_applets(tree, work_dir)
    return tree, assembly, counts


# -- finishing the root on disk ---------------------------------------------------------------

def _finish_root(root: Path, kernel_version: str) -> None:
    """What needs programs run on the root (its own static busybox and ldconfig, its own
    Python): modules.dep, ld.so.cache, compiled Python modules."""
    _run([str(root / BUSYBOX), "depmod", "-b", str(root), kernel_version], "depmod")
    modules_dir = root / "usr/lib/modules" / kernel_version
    for index in DEPMOD_OUTPUTS:  # written in directory order, which differs between machines
        path = modules_dir / index
        path.write_text("".join(sorted(path.read_text().splitlines(keepends=True))))
    _run([str(root / LDCONFIG), "-r", str(root)], "ldconfig")
    # Compiled by the ramdisk's own interpreter, one process (the bytes of a .pyc can depend on
    # what the compiling process compiled before, and frozensets follow the string hash seed),
    # checked by hash rather than mtime. -B: the modules compileall itself imports must not get
    # timestamped .pyc files first. (Not -I: it would ignore PYTHONHASHSEED.)
    python_dirs = [root / "usr/lib/python3.11", root / "usr/lib/python3/dist-packages"]
    _run([str(root / PYTHON), "-s", "-B", "-m", "compileall", "-q", "-f", "--invalidation-mode",
          "unchecked-hash", "-s", str(root), "-p", "/", *map(str, python_dirs)],
         "compiling the Python modules",
         env={"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"})


def _write_initramfs(root: Path, work_dir: Path, out: Path) -> int:
    """Write the compressed archive of `root` to `out`; the size of the uncompressed one."""
    entries = cpio_entries(root)
    entries.append(cpio.char_device("dev/console", TTY_MAJOR, CONSOLE_MINOR))
    entries.sort(key=lambda entry: entry.path)
    archive = work_dir / "initramfs.cpio"
    with archive.open("wb") as raw:
        cpio.write_newc(entries, raw)
    _run([*COMPRESSOR, "-o", str(out), str(archive)], "compressing the ramdisk")
    return archive.stat().st_size


# -- the build --------------------------------------------------------------------------------

def _kernel_deb(debs_dir: Path) -> Path:
    return debs.cached_kernel_deb(debs_dir) or debs.download(debs.resolve_kernel_package(),
                                                            debs_dir)


def build(cache_dir: Path = DEFAULT_CACHE_DIR) -> BuiltRamdisk:
    """Build unconditionally (downloading the packages into <cache>/debs when missing)."""
    started = time.monotonic()
    sources = fingerprint(source_files())  # before reading them: edits during the build count
    debs_dir, out_dir = cache_dir / "debs", cache_dir / OUTPUT_NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel_deb = _kernel_deb(debs_dir)
    kernel_files = debs.read_members(kernel_deb, ["boot/vmlinuz-*"])
    if len(kernel_files) != 1:
        raise BuildError(f"{kernel_deb.name} holds {len(kernel_files)} kernels, expected one")
    [(kernel_path, vmlinuz)] = kernel_files.items()
    kernel_version = kernel_path.removeprefix("boot/vmlinuz-")
    kernel_modules = modules.select(kernel_deb, list(contents.KERNEL_MODULES))
    if kernel_modules.version != kernel_version:
        raise BuildError(f"{kernel_deb.name}: kernel {kernel_version} but modules of "
                         f"{kernel_modules.version}")

    with tempfile.TemporaryDirectory(prefix=".build-", dir=out_dir) as work:
        work_dir = Path(work)
        tree, assembly, counts = assemble_tree(debs_dir, kernel_modules, work_dir)
        root = work_dir / "root"
        tree.write_to(root)
        _finish_root(root, kernel_version)
        partial = out_dir / f".{INITRAMFS_NAME}.{os.getpid()}"
        uncompressed_size = _write_initramfs(root, work_dir, partial)
        initramfs_path = out_dir / INITRAMFS_NAME
        partial.replace(initramfs_path)
    write_atomically(out_dir / VMLINUZ_NAME, vmlinuz)

    packages = {package: {"version": debs.version(deb), "deb": deb.name,
                          "sha256": file_sha256(deb), "paths": list(assembly.taken[package])}
                for package, deb in sorted(assembly.package_files.items())
                if package in assembly.taken}
    manifest = {
        "kernel_version": kernel_version,
        "kernel_deb": {"deb": kernel_deb.name, "version": debs.version(kernel_deb),
                       "sha256": file_sha256(kernel_deb)},
        "packages": packages,
        "kernel_modules": list(kernel_modules.names),
        "counts": counts,
        "sources": sources,
        "compression": " ".join(COMPRESSOR),
        "sizes": {VMLINUZ_NAME: len(vmlinuz),
                  INITRAMFS_NAME: initramfs_path.stat().st_size,
                  "initramfs_uncompressed": uncompressed_size},
        "sha256": {VMLINUZ_NAME: file_sha256(out_dir / VMLINUZ_NAME),
                   INITRAMFS_NAME: file_sha256(initramfs_path)},
        "build_seconds": round(time.monotonic() - started, 2),
    }
    write_atomically(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2).encode() + b"\n")
    return BuiltRamdisk(out_dir / VMLINUZ_NAME, initramfs_path, out_dir / MANIFEST_NAME,
                        kernel_version, manifest["build_seconds"])


def current_build(cache_dir: Path) -> BuiltRamdisk | None:
    """The build in <cache>/ramdisk if it is complete and made from the current sources and
    the packages still cached."""
    out_dir = cache_dir / OUTPUT_NAME
    try:
        manifest = json.loads((out_dir / MANIFEST_NAME).read_text())
        if manifest.get("sources") != fingerprint(source_files()):
            return None
        inputs = [manifest["kernel_deb"], *manifest["packages"].values()]
        for package in inputs:
            deb = cache_dir / "debs" / package["deb"]
            if not deb.is_file() or file_sha256(deb) != package["sha256"]:
                return None
        for name in (VMLINUZ_NAME, INITRAMFS_NAME):
            if file_sha256(out_dir / name) != manifest["sha256"][name]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return BuiltRamdisk(out_dir / VMLINUZ_NAME, out_dir / INITRAMFS_NAME,
                        out_dir / MANIFEST_NAME, manifest["kernel_version"],
                        manifest["build_seconds"])


def ensure_built(cache_dir: Path = DEFAULT_CACHE_DIR, force: bool = False) -> BuiltRamdisk:
    """The cached build when it is current, else a new one; safe to call from several processes
    (they wait for one another)."""
    with exclusive(cache_dir / f"{OUTPUT_NAME}.lock"):
        current = None if force else current_build(cache_dir)
        if current is not None:
            return current
        for stale in (cache_dir / OUTPUT_NAME).glob(".build-*"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        return build(cache_dir)
