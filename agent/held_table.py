"""The partition table a multicast session held back from its stream, written last.

The boot service's sender streams the image with its partition table's bytes zeroed and names
them in the session's document (``table``: ``[[offset, length], ...]``; the MBR and the EBRs
of its logical partitions, or a GPT's headers and entries): a PC cut off mid-stream has no
partition table over its half-written disk. The agent fetches those few bytes over HTTP before
the stream starts; after it, the blocks holding them are read back from the disk, patched with
them and checked against the manifest: the ones that match are handed to the repair as held
blocks, which ``restore_blocks(..., last=...)`` writes only once the rest of the disk verified
(a table block the stream spoiled is fetched whole there instead).
"""

from __future__ import annotations

import logging
from typing import Any

from agent.block_fetch import BlockFetcher
from agent.block_manifest import BlockManifest
from agent.block_reader import BlockReader
from agent.disks import Disk
from agent.errors import CommandError
from agent.restore_blocks import RestoreRequest
from agent.stream_verify import read_back

LOG = logging.getLogger(__name__)
MAX_TABLE_BYTES = 1024 * 1024  # a GPT's entries are 16 KiB, an MBR's 256 EBRs at most
# (services.boot.partition_table.MAX_EBRS) 128 KiB; a session naming more is wrong
Range = tuple[int, int]


def parse_ranges(document: Any, size: int) -> list[Range]:
    """The session's ``table`` ranges within an image of ``size`` bytes; [] when it names
    none or names them wrong (the table then comes with the stream)."""
    ranges: list[Range] = []
    for piece in document if isinstance(document, list) else ():
        if not (isinstance(piece, list) and len(piece) == 2
                and all(isinstance(value, int) and not isinstance(value, bool)
                        for value in piece)):
            return []
        offset, length = piece
        if offset < 0 or length <= 0 or offset + length > size:
            return []
        ranges.append((offset, length))
    if sum(length for _, length in ranges) > MAX_TABLE_BYTES:
        return []
    return ranges


def fetch(request: RestoreRequest, manifest: BlockManifest, ranges: list[Range],
          timeout_s: float) -> tuple[dict[int, bytes], int]:
    """The ranges' bytes by offset, and how many bytes came over HTTP; {} when the image
    server cannot give them (the repair then fetches their blocks whole)."""
    fetcher = BlockFetcher(request.disk_url, manifest, timeout_s, request.token_headers)
    try:
        return {offset: fetcher.read(offset, length) for offset, length in ranges}, \
            fetcher.fetched_bytes
    except CommandError as exc:
        LOG.warning("the partition table could not be fetched before the stream: %s", exc)
        return {}, fetcher.fetched_bytes
    finally:
        fetcher.close()


def table_blocks(manifest: BlockManifest, ranges: list[Range]) -> frozenset[int]:
    """The manifest's blocks holding some of the ranges."""
    size = manifest.block_size
    return frozenset(index for offset, length in ranges
                     for index in range(offset // size, (offset + length - 1) // size + 1))


def held_blocks(fd: int, disk: Disk, manifest: BlockManifest,
                pieces: dict[int, bytes]) -> dict[int, bytes]:
    """The table's blocks as the stream left them on the disk with the fetched pieces put
    in, those that then match the manifest."""
    reader = BlockReader(fd, manifest.size, manifest.block_size)
    held: dict[int, bytes] = {}
    for index in sorted(table_blocks(manifest, [(offset, len(data))
                                                for offset, data in pieces.items()])):
        start, length = manifest.span(index)
        try:
            block = bytearray(read_back(fd, disk, reader, manifest, index))
        except OSError as exc:
            LOG.warning("reading back block %d of %s failed: %s", index, disk.path, exc)
            continue
        for offset, data in pieces.items():
            low, high = max(offset, start), min(offset + len(data), start + length)
            if low < high:
                block[low - start:high - start] = data[low - offset:high - offset]
        if manifest.matches(index, block):
            held[index] = bytes(block)
    return held
