"""Realistic whole-disk images and realistic changes to them, for block-level restore tests.

The image is an MBR disk with one ext4 partition from 1 MiB, its file system filled with files of
random bytes and its free blocks holding old data as on a used PC (so the image is mostly
non-zero, and new files land on blocks that were data), made without root by ``mke2fs -d`` and
``debugfs``. A change is
what a class does to a PC: files written into a package-like tree (``debugfs -w``, so the file
system's bitmaps, inode tables and directories change where ext4 puts them), files removed, and
the partition table edited (the disk identifier and the partition type).
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from pathlib import Path

MiB = 1024 * 1024
FIRST_PARTITION = 1 * MiB


def _run(*argv: str, stdin: bytes | None = None) -> None:
    done = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.decode(errors='replace')}")


def _fill_tree(root: Path, data_bytes: int, rng: random.Random) -> None:
    """Directories of files of 4 KiB to 4 MiB of random bytes, ``data_bytes`` in all."""
    written = 0
    package = 0
    while written < data_bytes:
        directory = root / "usr" / "lib" / f"package-{package:04d}"
        directory.mkdir(parents=True)
        for number in range(rng.randint(3, 12)):
            size = min(rng.choice((4096, 65536, 524288, 4 * MiB)), data_bytes - written)
            if size <= 0:
                break
            (directory / f"file-{number}.so").write_bytes(rng.randbytes(size))
            written += size
        package += 1


def _debugfs(filesystem: Path, commands: list[str], workdir: Path) -> None:
    script = workdir / "debugfs-commands"
    script.write_text("\n".join(commands) + "\n")
    done = subprocess.run(["debugfs", "-w", "-f", str(script), str(filesystem)],
                          capture_output=True, text=True, check=True)
    errors = [line for line in done.stderr.splitlines() if ": " in line]
    if errors:  # debugfs exits 0 even when a write found no free blocks
        raise RuntimeError(f"debugfs could not change the file system: {errors[:3]}")


def _dirty_free_space(filesystem: Path, workdir: Path, rng: random.Random) -> None:
    """Free blocks holding old data, as on a PC that was used: a file filling the free space,
    written then removed."""
    header = subprocess.run(["dumpe2fs", "-h", str(filesystem)], capture_output=True, text=True,
                            check=True).stdout
    fields = dict(line.split(":", 1) for line in header.splitlines() if ":" in line)
    free = int(fields["Free blocks"]) * int(fields["Block size"])
    filler = workdir / "filler"
    remaining = max(free - 4 * MiB, 0)
    with filler.open("wb") as out:
        while remaining > 0:
            remaining -= out.write(rng.randbytes(min(4 * MiB, remaining)))
    _debugfs(filesystem, [f"write {filler} /filler", "rm /filler"], workdir)
    filler.unlink()


def make_os_image(path: Path, size: int, fill: float = 0.75, seed: int = 1,
                  used_free_space: bool = True) -> None:
    """A whole-disk image of ``size`` bytes whose file system is ``fill`` full of data (and, with
    ``used_free_space``, whose free blocks hold old data too)."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        tree = Path(scratch) / "tree"
        (tree / "etc").mkdir(parents=True)
        (tree / "etc" / "hostname").write_text("reference-pc\n")
        _fill_tree(tree, int((size - FIRST_PARTITION) * fill), rng)
        filesystem = Path(scratch) / "fs"
        with filesystem.open("wb") as handle:
            handle.truncate(size - FIRST_PARTITION)
        _run("mke2fs", "-q", "-F", "-t", "ext4", "-L", "root", "-d", str(tree), str(filesystem))
        if used_free_space:
            _dirty_free_space(filesystem, Path(scratch), rng)
        with path.open("wb") as disk:
            disk.truncate(size)
        _run("sfdisk", "--quiet", str(path), stdin=b"label: dos\nlabel-id: 0x1234abcd\n"
             b"start=2048, type=83, bootable\n")
        _copy_into(filesystem, path, FIRST_PARTITION)


def _copy_into(source: Path, disk: Path, offset: int) -> None:
    with source.open("rb") as reader, disk.open("r+b") as writer:
        writer.seek(offset)
        while chunk := reader.read(4 * MiB):
            writer.write(chunk)


def _copy_out(disk: Path, offset: int, target: Path) -> None:
    with disk.open("rb") as reader, target.open("wb") as writer:
        reader.seek(offset)
        while chunk := reader.read(4 * MiB):
            writer.write(chunk)


def change_disk(path: Path, fraction: float, seed: int = 2, tree: str | None = None) -> None:
    """Write about ``fraction`` of the disk's size as new files in a new package tree, remove a
    few files, and edit the partition table, as an OS running on the disk would. ``tree``: a
    further change of a disk changed once already, new files under /opt/<tree> only."""
    first = tree is None
    tree = tree or "class-work"
    rng = random.Random(seed)
    size = path.stat().st_size
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        filesystem = Path(scratch) / "fs"
        _copy_out(path, FIRST_PARTITION, filesystem)
        new_files = Path(scratch) / "new"
        new_files.mkdir()
        commands = (["mkdir /opt", "rm /etc/hostname"] if first else []) + [f"mkdir /opt/{tree}"]
        written = number = 0
        while written < fraction * size:
            count = min(rng.choice((16384, 262144, 1 * MiB)), int(fraction * size) - written + 1)
            local = new_files / f"f{number}"
            local.write_bytes(rng.randbytes(count))
            if number % 8 == 0:
                commands.append(f"mkdir /opt/{tree}/module-{number}")
            commands.append(f"write {local} /opt/{tree}/module-{number - number % 8}/"
                            f"f{number}")
            written += count
            number += 1
        _debugfs(filesystem, commands, Path(scratch))
        _copy_into(filesystem, path, FIRST_PARTITION)
    if not first:
        return
    _run("sfdisk", "--quiet", "--disk-id", str(path), "0x5678ef01")
    _run("sfdisk", "--quiet", "--part-type", str(path), "1", "8e")


def differing_blocks(first: Path, second: Path, block_size: int,
                     size: int | None = None) -> list[int]:
    """Indexes of the ``block_size`` blocks that differ over the first ``size`` bytes."""
    size = size if size is not None else first.stat().st_size
    different = []
    with first.open("rb") as one, second.open("rb") as two:
        for index in range(-(-size // block_size)):
            length = min(block_size, size - index * block_size)
            if one.read(length) != two.read(length):
                different.append(index)
    return different


def file_bytes(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def make_blank_disk(path: Path, size: int, pattern: bytes = b"") -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
        if pattern:
            handle.write(pattern)
    os.sync()
    return path
