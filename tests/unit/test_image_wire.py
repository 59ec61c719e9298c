"""Captured blocks on the wire: plain or zstd, decompressed with a bound (images/wire.py)."""

from __future__ import annotations

import os
import tracemalloc

import pytest
import zstandard

from services.images.wire import BadEncoding, decode_block

LIMIT = 4 * 1024 * 1024


def test_a_zstd_block_decodes_to_its_bytes() -> None:
    block = os.urandom(LIMIT // 2) + bytes(LIMIT // 2)
    packed = zstandard.ZstdCompressor(level=3).compress(block)
    assert len(packed) < len(block)
    assert decode_block(packed, "zstd", LIMIT) == block
    assert decode_block(packed, " ZSTD ", LIMIT) == block


def test_a_plain_block_is_itself() -> None:
    block = os.urandom(1000)
    assert decode_block(block, None, LIMIT) == block
    assert decode_block(block, "identity", LIMIT) == block


@pytest.mark.parametrize("content_size", [True, False])
def test_a_frame_expanding_beyond_the_limit_is_refused(content_size: bool) -> None:
    bomb = zstandard.ZstdCompressor(write_content_size=content_size).compress(bytes(LIMIT + 1))
    assert len(bomb) < 1000
    with pytest.raises(BadEncoding) as refused:
        decode_block(bomb, "zstd", LIMIT)
    assert refused.value.status == 413


def test_a_zip_bomb_is_refused_without_being_expanded() -> None:
    """1 GiB of zeros in about 40 KB: refused after at most the limit and one read chunk."""
    params = zstandard.ZstdCompressionParameters.from_level(19, window_log=20)
    compressor = zstandard.ZstdCompressor(compression_params=params)  # a window it accepts
    chunker = compressor.chunker(chunk_size=1 << 20)
    bomb = b"".join([*(b"".join(chunker.compress(bytes(1 << 20))) for _ in range(1024)),
                     *chunker.finish()])
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(BadEncoding) as refused:
            decode_block(bomb, "zstd", LIMIT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.status == 413
    assert peak < 4 * LIMIT, peak


def test_a_frame_wanting_a_larger_window_than_a_block_is_refused() -> None:
    """A small block whose frame asks for a 128 MiB window: refused from its header."""
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=27)
    chunker = zstandard.ZstdCompressor(compression_params=params).chunker()  # size unknown
    packed = b"".join([*chunker.compress(os.urandom(100_000)), *chunker.finish()])
    assert zstandard.get_frame_parameters(packed).window_size == 1 << 27
    with pytest.raises(BadEncoding) as refused:
        decode_block(packed, "zstd", LIMIT)
    assert refused.value.status == 400


def test_garbage_other_encodings_and_large_bodies_are_refused() -> None:
    with pytest.raises(BadEncoding) as garbage:
        decode_block(b"not zstd at all", "zstd", LIMIT)
    assert garbage.value.status == 400
    with pytest.raises(BadEncoding) as gzip:
        decode_block(b"x", "gzip", LIMIT)
    assert gzip.value.status == 415
    with pytest.raises(BadEncoding) as large:
        decode_block(bytes(LIMIT + 1), None, LIMIT)
    assert large.value.status == 413
