"""The ramdisk's root while it is assembled: path patterns, merged /usr, symlinks, conflicts,
and the archive entries it becomes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ramdisk import cpio
from ramdisk.tree import Tree, TreeError, cpio_entries, matches, merged_path


@pytest.mark.parametrize(("path", "pattern", "expected"), [
    ("usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/*.so*", True),
    ("usr/lib/x86_64-linux-gnu/gconv/UTF-16.so", "usr/lib/x86_64-linux-gnu/*.so*", False),
    ("usr/share/doc/a/b/copyright", "usr/share/doc/**", True),
    ("usr/share/docs", "usr/share/doc/**", False),
    ("usr/lib/python3.11/json/tests/x.py", "usr/lib/python3.11/**/tests/**", True),
    ("usr/lib/python3.11/tests/x.py", "usr/lib/python3.11/**/tests/**", True),
    ("usr/sbin/mkfs.ext4", "usr/sbin/mkfs.ext?", True),
    ("usr/sbin/mkfs.ext4", "usr/sbin/mkfs.ext", False),
    ("a+b/c", "a+b/*", True),  # regex characters are literal
    ("anything/at/all", "**", True),
])
def test_patterns_keep_single_stars_within_one_component(path: str, pattern: str,
                                                         expected: bool) -> None:
    assert matches(path, pattern) is expected


def test_top_level_program_and_library_directories_merge_into_usr() -> None:
    assert merged_path("sbin/mkfs.fat") == "usr/sbin/mkfs.fat"
    assert merged_path("./bin/mount".removeprefix(".")) == "usr/bin/mount"
    assert merged_path("lib64/ld-linux-x86-64.so.2") == "usr/lib64/ld-linux-x86-64.so.2"
    assert merged_path("usr/bin/qemu-img") == "usr/bin/qemu-img"
    assert merged_path("etc/mke2fs.conf") == "etc/mke2fs.conf"
    assert merged_path("library/x") == "library/x"


def test_symlinks_resolve_through_the_merged_directories() -> None:
    tree = Tree()
    tree.add_file("usr/lib/x86_64-linux-gnu/libudev.so.1.7.5", b"elf")
    tree.add_symlink("usr/lib/x86_64-linux-gnu/libudev.so.1", "libudev.so.1.7.5")
    # absolute, through /lib -> usr/lib; relative, climbing out of /usr
    tree.add_symlink("usr/lib64/ld.so", "/lib/x86_64-linux-gnu/libudev.so.1")
    tree.add_symlink("usr/share/x/lib", "../../../lib/x86_64-linux-gnu/libudev.so.1")
    real = "usr/lib/x86_64-linux-gnu/libudev.so.1.7.5"
    for path in ("lib/x86_64-linux-gnu/libudev.so.1", "usr/lib64/ld.so", "lib64/ld.so",
                 "usr/share/x/lib", "/usr/lib/../lib/./x86_64-linux-gnu/libudev.so.1"):
        assert tree.resolve(path) == real, path
        node = tree.file(path)
        assert node is not None and node.data == b"elf"
    assert tree.resolve("usr/lib/missing.so") is None
    assert tree.file("usr/lib") is None  # a directory is not a file


def test_symlink_loops_end() -> None:
    tree = Tree()
    tree.add_symlink("a", "b")
    tree.add_symlink("b", "a")
    assert tree.resolve("a") is None


def test_the_same_file_twice_is_fine_different_contents_are_an_error() -> None:
    tree = Tree()
    tree.add_file("etc/x", b"one", origin="pkg-a")
    tree.add_file("etc/x", b"one", origin="pkg-b")
    with pytest.raises(TreeError, match="pkg-a and pkg-c"):
        tree.add_file("etc/x", b"two", origin="pkg-c")
    tree.add_file("etc/y", b"data")
    with pytest.raises(TreeError, match="cannot hold"):
        tree.add_file("etc/y/z", b"data")


def test_written_tree_becomes_sorted_archive_entries_with_modes(tmp_path: Path) -> None:
    tree = Tree()
    tree.add_file("usr/bin/tool", b"#!/bin/sh\n", 0o755)
    tree.add_file("etc/conf", b"x=1\n", 0o644)
    tree.add_symlink("usr/bin/alias", "tool")
    tree.add_directory("tmp", 0o1777)
    root = tmp_path / "root"
    tree.write_to(root)
    entries = {entry.path: entry for entry in cpio_entries(root)}
    paths = list(entries)
    assert paths == sorted(paths)
    assert paths.index("usr") < paths.index("usr/bin") < paths.index("usr/bin/tool")
    assert entries["usr/bin/tool"].mode == stat.S_IFREG | 0o755
    assert entries["usr/bin/tool"].data == b"#!/bin/sh\n"
    assert entries["etc/conf"].mode == stat.S_IFREG | 0o644
    assert entries["usr/bin/alias"] == cpio.symlink("usr/bin/alias", "tool")
    assert entries["bin"] == cpio.symlink("bin", "usr/bin")
    assert entries["tmp"].mode == stat.S_IFDIR | 0o1777


def test_other_file_types_in_the_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "fifo")
    with pytest.raises(TreeError, match="fifo"):
        cpio_entries(root)
