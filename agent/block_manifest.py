"""The block manifest a delta restore works from (the agent's stdlib-only reading of the format
``services/images/manifest.py`` writes; see docs/images.md)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from agent.errors import CommandError

FORMAT = "enclume-block-manifest/1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class BlockManifest:
    size: int
    block_size: int
    image_sha256: str
    blocks: tuple[str | None, ...]  # sha256 hex, None: all zeros

    def span(self, index: int) -> tuple[int, int]:
        """``(offset, length)`` of block ``index`` on the disk."""
        offset = index * self.block_size
        return offset, min(self.block_size, self.size - offset)

    def matches(self, index: int, data: bytes | memoryview) -> bool:
        """Whether ``data`` is block ``index`` as the manifest describes it."""
        expected = self.blocks[index]
        if expected is None:
            return not any(bytes(data))
        return hashlib.sha256(data).hexdigest() == expected


def parse(raw: bytes, expected_sha256: str) -> BlockManifest:
    """The manifest, if ``raw`` has the sha256 the conductor announced and is well-formed."""
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected_sha256.lower():
        raise CommandError(f"the block manifest's sha256 is {actual}, expected {expected_sha256}")
    try:
        document = json.loads(raw)
        size, block_size = int(document["size"]), int(document["block_size"])
        blocks = tuple(document["blocks"])
        image_sha256 = str(document["image_sha256"])
        wellformed = (document.get("format") == FORMAT and document.get("hash") == "sha256"
                      and size > 0 and block_size > 0
                      and len(blocks) == -(-size // block_size)
                      and all(block is None or (isinstance(block, str) and _HEX64.match(block))
                              for block in blocks))
    except (ValueError, KeyError, TypeError):
        wellformed = False
    if not wellformed:
        raise CommandError(f"the block manifest is not a valid {FORMAT} document")
    return BlockManifest(size=size, block_size=block_size, image_sha256=image_sha256,
                         blocks=blocks)
