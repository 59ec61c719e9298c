"""Blocks as they travel from a capturing agent: plain, or one zstd frame (``Content-Encoding:
zstd``). A zstd block is decompressed with its output bounded by the block size and its window
by the same, so a small body can never make the server hold more than one block (a zip bomb
is refused, not expanded); the block's hash is checked afterwards as for a plain one."""

from __future__ import annotations

import io

import zstandard

from services.images.errors import StoreError

ENCODINGS = ("identity", "zstd")
READ_CHUNK = 1024 * 1024


class BadEncoding(StoreError):
    """A body that is not a block in an accepted encoding (HTTP 400, 413 or 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_block(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The block a request body carries; BadEncoding when it cannot be, or would exceed
    ``limit`` bytes once decoded."""
    encoding = (encoding or "identity").strip().lower()
    if encoding not in ENCODINGS:
        raise BadEncoding(415, f"blocks are sent plain or as zstd, not {encoding!r}")
    if len(body) > limit:
        raise BadEncoding(413, f"a block has at most {limit} bytes")
    return body if encoding == "identity" else _unzstd(body, limit)


def _unzstd(body: bytes, limit: int) -> bytes:
    window = 1 << max(limit - 1, 1).bit_length()  # a block needs no larger window
    decompressor = zstandard.ZstdDecompressor(max_window_size=max(window, 1 << 10))
    out = bytearray()
    try:
        with decompressor.stream_reader(io.BytesIO(body)) as reader:
            while chunk := reader.read(READ_CHUNK):
                out += chunk
                if len(out) > limit:
                    raise BadEncoding(413, f"the zstd block expands beyond {limit} bytes: "
                                           f"refused")
    except zstandard.ZstdError as exc:
        raise BadEncoding(400, f"the block is not a valid zstd frame: {exc}") from None
    return bytes(out)
