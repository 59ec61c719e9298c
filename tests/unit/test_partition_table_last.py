"""The partition table held back from a multicast stream and written last: the sender's ranges
(MBR, a GPT made by sfdisk), the file with them zeroed, the agent's patched blocks, and the
block restore writing the table only once the rest of the disk verified."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agent.block_manifest import BlockManifest
from agent.disks import Disk
from agent.held_table import held_blocks, parse_ranges, table_blocks
from agent.restore_blocks import RestoreRequest, restore_blocks
from services.boot.multicast_sender import MulticastSessions, sender_argv
from services.boot.partition_table import HEAD_BYTES, table_ranges, zeroed
from services.common.config_hardware_sections import MulticastSettings
from services.images.store import ImageStore

MiB = 1024 * 1024


def gpt_image(path: Path, size: int) -> bytes:
    if shutil.which("sfdisk") is None:
        pytest.skip("sfdisk (Debian fdisk) is missing")
    path.write_bytes(bytes(size))
    subprocess.run(["sfdisk", "-q", str(path)], input=b"label: gpt\n,1M\n", check=True)
    return path.read_bytes()


def manifest_of(image: bytes, block_size: int) -> BlockManifest:
    blocks = tuple(None if not any(image[i:i + block_size])
                   else hashlib.sha256(image[i:i + block_size]).hexdigest()
                   for i in range(0, len(image), block_size))
    return BlockManifest(len(image), block_size, hashlib.sha256(image).hexdigest(), blocks)


def test_an_mbr_image_holds_back_its_first_sector() -> None:
    head = bytearray(HEAD_BYTES)
    head[510:512] = b"\x55\xaa"
    assert table_ranges(bytes(head), 4 * MiB) == [(0, 512)]


def test_a_gpt_image_holds_back_both_headers_and_their_entries(tmp_path: Path) -> None:
    image = gpt_image(tmp_path / "gpt.img", 8 * MiB)
    ranges = table_ranges(image[:HEAD_BYTES], len(image))
    # sfdisk's GPT: 128 entries of 128 bytes (32 sectors) after LBA 1, the same before the
    # backup header in the last sector.
    assert ranges == [(0, 34 * 512), (len(image) - 33 * 512, 33 * 512)]
    stream = b"".join(zeroed((image[i:i + 100_000] for i in range(0, len(image), 100_000)),
                             ranges))
    assert len(stream) == len(image)
    assert stream[:34 * 512] == bytes(34 * 512) and stream[-33 * 512:] == bytes(33 * 512)
    assert stream[34 * 512:-33 * 512] == image[34 * 512:-33 * 512]
    # The agent finds the blocks they are in.
    manifest = manifest_of(image, MiB)
    assert table_blocks(manifest, ranges) == {0, 7}


@pytest.mark.parametrize("document", [[[0, -1]], [[0, 10**9]], [["0", 512]], [[0, True]],
                                      "0-512", [[0, 2 * MiB]]])
def test_a_session_naming_its_table_wrong_holds_nothing_back(document: object) -> None:
    assert parse_ranges(document, 4 * MiB) == []
    assert parse_ranges([[0, 512], [4 * MiB - 512, 512]], 4 * MiB) == [
        (0, 512), (4 * MiB - 512, 512)]


def test_the_streamed_blocks_patched_with_the_fetched_table_are_held_when_they_match(
        tmp_path: Path) -> None:
    image = gpt_image(tmp_path / "gpt.img", 8 * MiB)
    ranges = table_ranges(image[:HEAD_BYTES], len(image))
    manifest = manifest_of(image, MiB)
    streamed = bytearray(b"".join(zeroed([image], ranges)))
    streamed[7 * MiB + 10] ^= 0xFF  # the stream spoiled the last block: it is not held
    path = tmp_path / "disk"
    path.write_bytes(streamed)
    disk = Disk(str(path), len(image), is_block=False)
    pieces = {offset: image[offset:offset + length] for offset, length in ranges}
    fd = disk.open()
    try:
        held = held_blocks(fd, disk, manifest, pieces)
    finally:
        os.close(fd)
    assert set(held) == {0}
    assert held[0] == image[:MiB]


def test_the_restore_writes_the_table_only_once_the_rest_verified(tmp_path: Path) -> None:
    size, count = 64 * 1024, 16
    image = b"".join(bytes([index + 1]) * size for index in range(count))
    manifest = manifest_of(image, size)
    differing = {0, 3, 9}  # block 0: the table, zeroed by the stream
    path = tmp_path / "disk"
    path.write_bytes(b"".join(bytes(size) if index in differing
                              else image[index * size:(index + 1) * size]
                              for index in range(count)))
    disk = Disk(str(path), len(image), is_block=False)
    seen: list[tuple[int, bool, bool]] = []

    def on_progress(done: int, total: int | None) -> None:
        data = path.read_bytes()
        seen.append((done, data[:size] == image[:size], data[size:] == image[size:]))

    request = RestoreRequest("http://boot/m", "a" * 64, "http://boot/d", "delta", None)
    held = {index: image[index * size:(index + 1) * size] for index in differing}
    result = restore_blocks(request, [disk], 5, on_progress, loaded=(disk, manifest),
                            held=held, last=frozenset({0}))
    assert result["verified"] and result["differing_blocks"] == len(differing)
    assert path.read_bytes() == image
    first_with_table = next(done for done, table, _ in seen if table)
    # By then the rest was written and read back: its comparing and verification are the
    # progress of all blocks but the table's.
    assert all(rest for _, table, rest in seen if table)
    assert first_with_table >= (count - 1) * size, seen


def test_the_senders_file_has_the_table_zeroed_and_its_session_names_it(
        tmp_path: Path) -> None:
    if shutil.which("uftp") is None:
        pytest.skip("uftp (Debian uftp) is missing")
    image = bytearray(os.urandom(2 * MiB))
    image[510:512] = b"\x55\xaa"
    source = tmp_path / "image.raw"
    source.write_bytes(image)
    store = ImageStore(tmp_path / "store", 16 * MiB)
    store.ingest_file("v1", source, hashlib.sha256(image).hexdigest())
    sessions = MulticastSessions(MulticastSettings(max_nak_percent=150, max_nak_times=3),
                                 "lo", store)
    try:
        session = sessions.open("v1", 2)
        assert session.document()["table"] == [[0, 512]]
        path = sessions.cache.directory / "multicast-version-v1-table-zeroed.raw"
        deadline = time.monotonic() + 60
        while session.cache_key is None:  # made in the session's thread
            assert time.monotonic() < deadline, "the session's file was never made"
            time.sleep(0.05)
        data = path.read_bytes()
        assert data[:512] == bytes(512) and data[512:] == image[512:]
        argv = sender_argv(sessions.settings, "lo", session, path)
        assert argv[argv.index("-N") + 1] == "100"  # uftp's most: nobody is dropped
        assert argv[argv.index("-m") + 1] == "3"
    finally:
        sessions.stop()
