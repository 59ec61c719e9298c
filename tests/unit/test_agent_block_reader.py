"""The agent's block reader on a real file: O_DIRECT during a pass where the file allows it, the
page cache for what O_DIRECT cannot read, the same bytes either way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.block_reader import BlockReader

BLOCK = 64 * 1024


def _direct_descriptors(path: Path) -> list[int]:
    """This process's descriptors of ``path`` opened with O_DIRECT."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") != str(path):
                continue
            flags = next(line for line in Path(f"/proc/self/fdinfo/{name}").read_text()
                         .splitlines() if line.startswith("flags:"))
        except OSError:
            continue  # closed meanwhile
        if int(flags.split()[1], 8) & os.O_DIRECT:
            found.append(int(name))
    return found


@pytest.fixture
def disk(tmp_path: Path) -> tuple[Path, bytes]:
    data = b"".join(os.urandom(BLOCK) if index % 3 else bytes(BLOCK) for index in range(9))
    data += os.urandom(1000)  # a last block shorter than the others, not O_DIRECT-aligned
    path = tmp_path / "disk.img"
    path.write_bytes(data)
    return path, data


def _pass(reader: BlockReader, path: Path) -> dict[int, tuple[bytes, bool, list[int]]]:
    count = -(-reader.size // reader.block_size)

    def work(index: int) -> tuple[bytes, bool, list[int]]:
        block = reader.read(index)
        return bytes(block), reader.is_zero(block), _direct_descriptors(path)

    return dict(reader.in_order(range(count), work))


def test_a_pass_reads_every_block_in_order_with_o_direct(disk: tuple[Path, bytes]) -> None:
    path, data = disk
    fd = os.open(path, os.O_RDWR)
    try:
        reader = BlockReader(fd, len(data), BLOCK)
        seen = _pass(reader, path)
        assert list(seen) == list(range(10))
        for index, (block, zero, _) in seen.items():
            assert block == data[index * BLOCK:(index + 1) * BLOCK]
            assert zero == (index % 3 == 0 and index < 9)
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
        except OSError:
            pytest.skip(f"{path.parent}'s file system refuses O_DIRECT")
        assert all(direct for _, _, direct in seen.values())
        assert _direct_descriptors(path) == []  # closed when the pass ended
        assert bytes(reader.read(4)) == data[4 * BLOCK:5 * BLOCK]  # outside a pass: cached
    finally:
        os.close(fd)


@pytest.mark.parametrize("base", [512, 0])
def test_blocks_o_direct_cannot_read_come_through_the_page_cache(
        disk: tuple[Path, bytes], base: int) -> None:
    """A partition starting off a 4 KiB boundary, and a disk that refuses O_DIRECT."""
    path, data = disk
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = BlockReader(fd, len(data) - base, BLOCK, base, direct=bool(base))
        seen = _pass(reader, path)
        assert b"".join(block for block, _, _ in seen.values()) == data[base:]
    finally:
        os.close(fd)


def test_a_short_disk_is_an_error(disk: tuple[Path, bytes]) -> None:
    path, data = disk
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = BlockReader(fd, len(data) + BLOCK, BLOCK)
        with pytest.raises(OSError, match="short read"):
            dict(reader.in_order([9], lambda index: bytes(reader.read(index))))
    finally:
        os.close(fd)
