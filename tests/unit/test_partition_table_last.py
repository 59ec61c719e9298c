"""The partition table held back from a multicast stream and written last: the sender's ranges
(MBR, a GPT made by sfdisk, an MBR's EBR chain made by sfdisk, corrupt chains), the file with
them zeroed, the agent's patched blocks, and the block restore writing the table only once the
rest of the disk verified."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.block_manifest import BlockManifest
from agent.disks import Disk
from agent.held_table import MAX_TABLE_BYTES, held_blocks, parse_ranges, table_blocks
from agent.restore_blocks import RestoreRequest, restore_blocks
from services.boot.multicast_sender import MulticastSessions, sender_argv, sender_file_key
from services.boot.partition_table import (
    HEAD_BYTES,
    MAX_EBRS,
    SECTOR,
    held_ranges,
    table_ranges,
    zeroed,
)
from services.common.config_hardware_sections import MulticastSettings
from services.images.store import ImageStore

MiB = 1024 * 1024


def gpt_image(path: Path, size: int) -> bytes:
    if shutil.which("sfdisk") is None:
        pytest.skip("sfdisk (Debian fdisk) is missing")
    path.write_bytes(bytes(size))
    subprocess.run(["sfdisk", "-q", str(path)], input=b"label: gpt\n,1M\n", check=True)
    return path.read_bytes()


# Three primaries, then an extended partition with three logicals: sfdisk writes an EBR before
# each logical (sectors 8192, 14336 and 20480 of its layout: blocks 4, 7 and 10 of 1 MiB).
LOGICALS = b"label: dos\n2048,2048,L\n4096,2048,L\n6144,2048,L\n8192,,E\n" + b",4096,L\n" * 3


@pytest.fixture(scope="module")
def mbr_with_logicals(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[int]]:
    """16 MiB of random bytes partitioned by sfdisk, and the sectors of its EBRs: those sfdisk
    changed besides the MBR (found by comparing, not by reading the chain). Made once: the
    tests only read it."""
    if shutil.which("sfdisk") is None:
        pytest.skip("sfdisk (Debian fdisk) is missing")
    size = 16 * MiB
    path = tmp_path_factory.mktemp("mbr") / "mbr.img"
    before = os.urandom(size)
    path.write_bytes(before)
    subprocess.run(["sfdisk", "-q", str(path)], input=LOGICALS, check=True,
                   capture_output=True)
    image = path.read_bytes()
    changed = [number for number in range(size // SECTOR)
               if image[number * SECTOR:(number + 1) * SECTOR]
               != before[number * SECTOR:(number + 1) * SECTOR]]
    assert changed[0] == 0 and len(changed) == 4, changed  # the MBR and three EBRs
    return image, changed[1:]


def reader(image: bytes | bytearray) -> Callable[[int, int], bytes]:
    return lambda offset, length: bytes(image[offset:offset + length])


def set_entry(image: bytearray, sector: int, entry: int, kind: int, start: int,
              sectors: int) -> None:
    at = sector * SECTOR + 446 + 16 * entry
    image[at + 4] = kind
    struct.pack_into("<II", image, at + 8, start, sectors)


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
        deadline = time.monotonic() + 60
        while session.cache_key is None:  # made in the session's thread
            assert time.monotonic() < deadline, "the session's file was never made"
            time.sleep(0.05)
        assert session.cache_key.startswith("multicast-version-v1-table-zeroed-")
        path = sessions.cache.directory / session.cache_key
        data = path.read_bytes()
        assert data[:512] == bytes(512) and data[512:] == image[512:]
        argv = sender_argv(sessions.settings, "lo", session, path)
        assert argv[argv.index("-N") + 1] == "100"  # uftp's most: nobody is dropped
        assert argv[argv.index("-m") + 1] == "3"
    finally:
        sessions.stop()


def test_an_mbr_images_logical_partitions_have_their_ebrs_held_back(
        tmp_path: Path, mbr_with_logicals: tuple[bytes, list[int]]) -> None:
    image, ebrs = mbr_with_logicals
    held = held_ranges(reader(image), len(image))
    assert held.faults == []
    assert held.ranges == [(0, SECTOR)] + [(sector * SECTOR, SECTOR) for sector in ebrs]
    stream = b"".join(zeroed((image[i:i + 100_000] for i in range(0, len(image), 100_000)),
                             held.ranges))
    tables = {offset for offset, _ in held.ranges}
    for offset in range(0, len(image), SECTOR):
        expected = bytes(SECTOR) if offset in tables else image[offset:offset + SECTOR]
        assert stream[offset:offset + SECTOR] == expected, offset
    # With the MBR alone put back (what was held before), the logical partitions are still
    # gone: their tables were held back too.
    cut = tmp_path / "cut.img"
    cut.write_bytes(image[:SECTOR] + stream[SECTOR:])
    listed = subprocess.run(["sfdisk", "-d", str(cut)], capture_output=True, text=True)
    assert f"{cut}4 :" in listed.stdout and f"{cut}5 :" not in listed.stdout, listed
    assert table_blocks(manifest_of(image, MiB), held.ranges) == {0, 4, 7, 10}


def corrupt(image: bytearray, ebrs: list[int], how: str) -> None:
    first, second, third = ebrs
    if how == "loop to the first":
        set_entry(image, third, 1, 0x05, 0, 2048)  # the third EBR links to the first
    elif how == "loop to itself":
        set_entry(image, second, 1, 0x05, second - first, 2048)
    elif how == "link outside the image":
        set_entry(image, second, 1, 0x0F, 0x7FFF0000, 2048)
    elif how == "no signature":
        image[third * SECTOR + 510:third * SECTOR + 512] = bytes(2)
    elif how == "extended partition outside the image":
        set_entry(image, 0, 3, 0x85, len(image) // SECTOR + 10, 2048)


@pytest.mark.parametrize(("how", "kept", "fault"), [
    ("loop to the first", 3, "loops back to sector 8192"),
    ("loop to itself", 2, "loops back to sector 14336"),
    ("link outside the image", 2, "outside the image"),
    ("no signature", 2, "no 0x55AA signature"),
    ("extended partition outside the image", 0, "outside the image"),
])
def test_a_corrupt_ebr_chain_holds_what_is_valid_and_says_what_is_not(
        mbr_with_logicals: tuple[bytes, list[int]], how: str, kept: int, fault: str) -> None:
    image, ebrs = mbr_with_logicals
    edited = bytearray(image)
    corrupt(edited, ebrs, how)
    held = held_ranges(reader(edited), len(edited))
    assert held.ranges == [(0, SECTOR)] + [(sector * SECTOR, SECTOR) for sector in ebrs[:kept]]
    assert len(held.faults) == 1 and fault in held.faults[0], held.faults


def test_an_endless_ebr_chain_stops_within_what_the_agent_takes() -> None:
    """Each EBR links to the next sector's, valid, in an image of a TiB: the chain stops at
    MAX_EBRS, whose ranges the agent's session parsing still accepts."""
    size = 1 << 40
    mbr = bytearray(SECTOR)
    mbr[510:512] = b"\x55\xaa"
    set_entry(mbr, 0, 0, 0x05, 2048, size // SECTOR - 2048)

    def read(offset: int, length: int) -> bytes:
        if offset == 0:
            return bytes(mbr[:length]) + bytes(max(0, length - SECTOR))
        sector = bytearray(SECTOR)
        sector[510:512] = b"\x55\xaa"
        set_entry(sector, 0, 0, 0x83, 1, 1)
        set_entry(sector, 0, 1, 0x05, offset // SECTOR - 2048 + 1, 1)
        return bytes(sector[:length])

    held = held_ranges(read, size)
    assert len(held.ranges) == 1 + MAX_EBRS and len(held.faults) == 1, held.faults
    document = [list(piece) for piece in held.ranges]
    assert parse_ranges(document, size) == held.ranges
    assert (1 + MAX_EBRS) * SECTOR <= MAX_TABLE_BYTES


def test_the_agent_holds_the_ebr_blocks_and_writes_them_after_the_rest(
        tmp_path: Path, mbr_with_logicals: tuple[bytes, list[int]]) -> None:
    image, _ = mbr_with_logicals
    ranges = held_ranges(reader(image), len(image)).ranges
    manifest = manifest_of(image, MiB)
    tables = table_blocks(manifest, ranges)
    streamed = bytearray(b"".join(zeroed([image], ranges)))
    spoiled = {2, 12}  # lost in the stream, at hand again for the repair below
    for index in spoiled:
        streamed[index * MiB + 7] ^= 0xFF
    path = tmp_path / "disk"
    path.write_bytes(streamed)
    disk = Disk(str(path), len(image), is_block=False)
    fd = disk.open()
    try:
        held = held_blocks(fd, disk, manifest, {offset: image[offset:offset + length]
                                                for offset, length in ranges})
    finally:
        os.close(fd)
    assert set(held) == tables == {0, 4, 7, 10}
    assert all(held[index] == image[index * MiB:(index + 1) * MiB] for index in tables)
    seen: list[tuple[bool, bool]] = []

    def on_progress(done: int, total: int | None) -> None:
        data = path.read_bytes()
        seen.append((any(data[i * MiB:(i + 1) * MiB] == image[i * MiB:(i + 1) * MiB]
                         for i in tables),
                     all(data[i * MiB:(i + 1) * MiB] == image[i * MiB:(i + 1) * MiB]
                         for i in range(len(image) // MiB) if i not in tables)))

    request = RestoreRequest("http://boot/m", "a" * 64, "http://boot/d", "delta", None)
    at_hand = {**held, **{index: image[index * MiB:(index + 1) * MiB] for index in spoiled}}
    result = restore_blocks(request, [disk], 5, on_progress, loaded=(disk, manifest),
                            held=at_hand, last=frozenset(tables))
    assert result["verified"] and result["fetched_bytes"] == 0
    assert result["differing_blocks"] == len(tables) + len(spoiled)
    assert path.read_bytes() == image
    assert any(table for table, _ in seen), seen
    assert all(rest for table, rest in seen if table), seen


def test_a_session_of_an_image_with_a_corrupt_ebr_chain_holds_its_valid_ebrs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        mbr_with_logicals: tuple[bytes, list[int]]) -> None:
    if shutil.which("uftp") is None:
        pytest.skip("uftp (Debian uftp) is missing")
    image, ebrs = mbr_with_logicals
    edited = bytearray(image)
    corrupt(edited, ebrs, "loop to the first")
    source = tmp_path / "image.raw"
    source.write_bytes(edited)
    store = ImageStore(tmp_path / "store", 64 * MiB)
    store.ingest_file("v1", source, hashlib.sha256(edited).hexdigest())
    sessions = MulticastSessions(MulticastSettings(), "lo", store)
    try:
        with caplog.at_level(logging.WARNING, "services.boot.multicast_sender"):
            session = sessions.open("v1", 2)
        assert session.document()["table"] == [[0, SECTOR]] + [[sector * SECTOR, SECTOR]
                                                               for sector in ebrs]
        assert "loops back to sector 8192" in caplog.text
        deadline = time.monotonic() + 60
        while session.cache_key is None:  # made in the session's thread
            assert time.monotonic() < deadline, "the session's file was never made"
            time.sleep(0.05)
        # not the file of the same version with its MBR alone zeroed
        assert session.cache_key != sender_file_key("v1", [(0, SECTOR)])
        data = (sessions.cache.directory / session.cache_key).read_bytes()
        assert data == b"".join(zeroed([bytes(edited)], held_ranges(reader(edited),
                                                                     len(edited)).ranges))
        assert all(data[sector * SECTOR:(sector + 1) * SECTOR] == bytes(SECTOR)
                   for sector in [0, *ebrs])
    finally:
        sessions.stop()
