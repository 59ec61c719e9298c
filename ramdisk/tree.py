"""The ramdisk's root file system while it is assembled: files and symlinks in memory.

Debian 12 packages still ship files under /bin, /sbin, /lib and /lib64; the ramdisk merges them
into /usr (as Debian's usrmerge does) and has the top-level names as symlinks. Paths here are
relative ("usr/bin/busybox").
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from ramdisk import cpio

MERGED_DIRECTORIES = ("bin", "sbin", "lib", "lib64")
MAX_SYMLINK_HOPS = 40


class TreeError(RuntimeError):
    """Two packages disagree about a path, or a path cannot be placed."""


@dataclass(frozen=True)
class Node:
    kind: Literal["file", "symlink", "dir"]
    mode: int = 0o755  # permission bits
    data: bytes = b""
    target: str = ""  # symlinks
    origin: str = ""  # the package (or "ramdisk") it came from


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts, index = [], 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def matches(path: str, pattern: str) -> bool:
    """Shell-like matching of whole paths: `*` and `?` stay within one path component, `**`
    spans any number of them ("usr/lib/**/*.py", "usr/share/doc/**")."""
    return _glob_regex(pattern).match(path) is not None


def matches_any(path: str, patterns: tuple[str, ...] | list[str]) -> bool:
    return any(matches(path, pattern) for pattern in patterns)


def merged_path(path: str) -> str:
    """Where a package path lands with /usr merged: "sbin/mkfs.fat" -> "usr/sbin/mkfs.fat"."""
    path = path.strip("/")
    first = path.split("/", 1)[0]
    return f"usr/{path}" if first in MERGED_DIRECTORIES else path


class Tree:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        for name in MERGED_DIRECTORIES:
            self.add_directory(f"usr/{name}")
            self.add_symlink(name, f"usr/{name}", "ramdisk")

    def __contains__(self, path: str) -> bool:
        return path in self.nodes

    def add_directory(self, path: str, mode: int = 0o755) -> None:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            existing = self.nodes.get(parent)
            if existing is None:
                self.nodes[parent] = Node("dir", mode if depth == len(parts) else 0o755)
            elif existing.kind != "dir":
                raise TreeError(f"{parent} is a {existing.kind} (from {existing.origin}), "
                                f"cannot hold {path}")

    def _place(self, path: str, node: Node) -> None:
        path = path.strip("/")
        existing = self.nodes.get(path)
        if existing is not None:
            same = (existing.kind, existing.data, existing.target) == \
                (node.kind, node.data, node.target)
            if same:
                return
            raise TreeError(f"{path} comes from both {existing.origin} and {node.origin} "
                            f"with different contents")
        parent = posixpath.dirname(path)
        if parent:
            self.add_directory(parent)
        self.nodes[path] = node

    def add_file(self, path: str, data: bytes, mode: int = 0o644, origin: str = "ramdisk") -> None:
        self._place(path, Node("file", mode & 0o7777, data, origin=origin))

    def add_symlink(self, path: str, target: str, origin: str = "ramdisk") -> None:
        self._place(path, Node("symlink", 0o777, target=target, origin=origin))

    def remove(self, path: str) -> None:
        self.nodes.pop(path, None)

    def resolve(self, path: str) -> str | None:
        """The path `path` leads to after following symlinks (in any component), None when it
        leads nowhere in the tree."""
        pending = [part for part in path.strip("/").split("/") if part]
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/".join([*resolved, part])
            node = self.nodes.get(candidate)
            if node is None:
                return None
            if node.kind == "symlink":
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                if node.target.startswith("/"):
                    resolved = []
                pending = [p for p in node.target.split("/") if p] + pending
                continue
            resolved.append(part)
        return "/".join(resolved)

    def file(self, path: str) -> Node | None:
        """The regular file `path` leads to, if any."""
        real = self.resolve(path)
        node = self.nodes.get(real) if real is not None else None
        return node if node is not None and node.kind == "file" else None

    def files(self) -> list[tuple[str, Node]]:
        return sorted((path, node) for path, node in self.nodes.items() if node.kind == "file")

    def write_to(self, root: Path) -> None:
        """Create the tree under the (empty or missing) directory `root`."""
        root.mkdir(parents=True, exist_ok=True)
        for path, node in sorted(self.nodes.items()):
            target = root / path
            if node.kind == "dir":
                target.mkdir(exist_ok=True)
                target.chmod(node.mode)
            elif node.kind == "symlink":
                target.symlink_to(node.target)
            else:
                target.write_bytes(node.data)
                target.chmod(node.mode)


def cpio_entries(root: Path) -> list[cpio.Entry]:
    """Every directory, file and symlink under `root` as initramfs entries, sorted by path
    (parents first), owned by root; modes as on disk. Other file types are an error."""
    entries = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories.sort()
        for name in sorted([*subdirectories, *names]):
            full = Path(directory, name)
            relative = full.relative_to(root).as_posix()
            info = full.lstat()
            if stat.S_ISLNK(info.st_mode):
                entries.append(cpio.symlink(relative, os.readlink(full)))
            elif stat.S_ISDIR(info.st_mode):
                entries.append(cpio.Entry(relative, stat.S_IFDIR | stat.S_IMODE(info.st_mode)))
            elif stat.S_ISREG(info.st_mode):
                entries.append(cpio.Entry(relative, stat.S_IFREG | stat.S_IMODE(info.st_mode),
                                          full.read_bytes()))
            else:
                raise TreeError(f"unexpected file type in the ramdisk root: {relative}")
    return sorted(entries, key=lambda entry: entry.path)
