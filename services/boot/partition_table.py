"""The partition table's bytes of an image, held back from a multicast stream.

uftpd writes each block as it arrives: a PC cut off mid-stream would keep the image's partition
table over a half-written disk. The sender's file carries these byte ranges zeroed (the MBR and
the EBRs of its logical partitions; with GPT, the primary header and entries, and the backup
entries and header that end the image); the agents fetch them over HTTP before the stream and
write them only once the rest of their disk verified (``agent.multicast_restore``).

An MBR's extended partition (an entry of type 0x05, 0x0F or 0x85) starts with an EBR: its first
entry a logical partition, another entry (the second, as sfdisk and fdisk write them) of an
extended type linking to the next EBR, its start counted from the extended partition's. The
chain is read as Linux's ``parse_extended`` (block/partitions/msdos.c) reads it: an EBR without
the 0x55AA signature ends it, the first extended entry with sectors links on. A corrupt chain
(a link back to an EBR already read, or outside the image) ends where it goes wrong: the EBRs
read until then are held back, the fault is reported (the rest comes with the stream; the
restore still verifies by the block manifest).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

SECTOR = 512
HEAD_BYTES = 2 * SECTOR  # the MBR and the GPT header: all ``table_ranges`` reads
GPT_SIGNATURE = b"EFI PART"
MBR_SIGNATURE = b"\x55\xaa"
ENTRIES_AT, ENTRY_BYTES, ENTRY_COUNT = 446, 16, 4
EXTENDED_TYPES = frozenset({0x05, 0x0F, 0x85})
MAX_EBRS = 256  # far more logical partitions than any image has; a chain this long is corrupt
Range = tuple[int, int]  # offset, length
Read = Callable[[int, int], bytes]  # the image's bytes at an offset, of a length


@dataclass
class HeldRanges:
    ranges: list[Range] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # what was wrong in the EBR chain


def held_ranges(read: Read, size: int) -> HeldRanges:
    """The partition table's ranges of the image of ``size`` bytes ``read`` gives: the MBR
    and its EBR chain, or a GPT's (``table_ranges``)."""
    head = read(0, min(HEAD_BYTES, size))
    held = HeldRanges(table_ranges(head, size))
    if not is_gpt(head):
        _follow_ebrs(head, read, size, held)
    return held


def is_gpt(head: bytes) -> bool:
    return len(head) >= HEAD_BYTES and head[SECTOR:SECTOR + len(GPT_SIGNATURE)] == GPT_SIGNATURE


def table_ranges(head: bytes, size: int) -> list[Range]:
    """The byte ranges of an image of ``size`` bytes (``head``: its first HEAD_BYTES) that hold
    its partition table's first sectors: the MBR, and a GPT's headers and entries when LBA 1
    holds one (an MBR's EBRs are inside the disk: ``held_ranges`` finds them)."""
    if not is_gpt(head):
        return [(0, min(SECTOR, size))]
    header = head[SECTOR:HEAD_BYTES]
    backup_lba, = struct.unpack_from("<Q", header, 32)
    entries_lba, = struct.unpack_from("<Q", header, 72)
    count, entry_size = struct.unpack_from("<II", header, 80)
    entry_sectors = -(-count * entry_size // SECTOR)
    primary_end = min((entries_lba + entry_sectors) * SECTOR, size)
    ranges = [(0, max(primary_end, HEAD_BYTES))]
    backup_start = (backup_lba - entry_sectors) * SECTOR
    backup_end = (backup_lba + 1) * SECTOR
    if primary_end <= backup_start and backup_end <= size:
        ranges.append((backup_start, backup_end - backup_start))
    return ranges


def entries(sector: bytes) -> list[tuple[int, int, int]]:
    """An MBR's or EBR's four entries as ``(type, first sector, sectors)``."""
    return [(sector[at + 4], *struct.unpack_from("<II", sector, at + 8))
            for at in range(ENTRIES_AT, ENTRIES_AT + ENTRY_COUNT * ENTRY_BYTES, ENTRY_BYTES)]


def _has_signature(sector: bytes) -> bool:
    return len(sector) >= SECTOR and sector[510:SECTOR] == MBR_SIGNATURE


def _follow_ebrs(mbr: bytes, read: Read, size: int, held: HeldRanges) -> None:
    """Appends the EBRs of each extended partition of ``mbr`` to ``held``."""
    if not _has_signature(mbr):
        return
    seen = {0}  # the MBR is no EBR: a link back to it is a loop too
    image_sectors = size // SECTOR
    for kind, extended_start, sectors in entries(mbr):
        if kind not in EXTENDED_TYPES or not sectors:
            continue
        current = extended_start
        while True:
            if current in seen:
                held.faults.append(f"the EBR chain loops back to sector {current}")
                break
            if current >= image_sectors:
                held.faults.append(f"an EBR at sector {current} is outside the image "
                                   f"({image_sectors} sectors)")
                break
            if len(held.ranges) > MAX_EBRS:
                held.faults.append(f"more than {MAX_EBRS} EBRs: the chain is not followed on")
                break
            seen.add(current)
            ebr = read(current * SECTOR, SECTOR)
            if not _has_signature(ebr):
                if current != extended_start:  # an empty extended partition has no EBR
                    held.faults.append(f"the EBR at sector {current} has no 0x55AA signature")
                break
            held.ranges.append((current * SECTOR, SECTOR))
            links = [start for kind, start, sectors in entries(ebr)
                     if kind in EXTENDED_TYPES and sectors]
            if not links:
                break
            current = extended_start + links[0]


def zeroed(chunks: Iterable[bytes], ranges: list[Range]) -> Iterator[bytes]:
    """``chunks`` (consecutive, from offset 0) with the bytes of ``ranges`` zeroed."""
    offset = 0
    for chunk in chunks:
        end = offset + len(chunk)
        hits = [(start, length) for start, length in ranges
                if start < end and start + length > offset]
        if hits:
            edited = bytearray(chunk)
            for start, length in hits:
                low, high = max(start, offset) - offset, min(start + length, end) - offset
                edited[low:high] = bytes(high - low)
            chunk = bytes(edited)
        yield chunk
        offset = end
