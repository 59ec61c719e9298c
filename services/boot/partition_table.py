"""The partition table's bytes of an image, held back from a multicast stream.

uftpd writes each block as it arrives: a PC cut off mid-stream would keep the image's partition
table over a half-written disk. The sender's file carries these byte ranges zeroed (the MBR; with
GPT, the primary header and entries, and the backup entries and header that end the image); the
agents fetch them over HTTP before the stream and write them only once the rest of their disk
verified against the manifest (``agent.multicast_restore``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

SECTOR = 512
HEAD_BYTES = 2 * SECTOR  # the MBR and the GPT header: all ``table_ranges`` reads
GPT_SIGNATURE = b"EFI PART"
Range = tuple[int, int]  # offset, length


def table_ranges(head: bytes, size: int) -> list[Range]:
    """The byte ranges of an image of ``size`` bytes (``head``: its first HEAD_BYTES) that hold
    its partition table: the MBR, and a GPT's headers and entries when LBA 1 holds one."""
    if len(head) < HEAD_BYTES or head[SECTOR:SECTOR + len(GPT_SIGNATURE)] != GPT_SIGNATURE:
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
