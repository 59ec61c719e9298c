"""The agent's block-restore parts that need no disk or server: runs, manifest checks, params."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from agent.block_fetch import runs
from agent.block_manifest import parse
from agent.errors import BadParams, CommandError
from agent.restore_blocks import parse_params
from services.images import manifest as server_manifest


def test_adjacent_blocks_are_coalesced_up_to_the_limit() -> None:
    assert list(runs([0, 1, 2, 5, 6, 9], limit=16)) == [[0, 1, 2], [5, 6], [9]]
    assert list(runs(range(5), limit=2)) == [[0, 1], [2, 3], [4]]
    assert list(runs([])) == []


def test_the_agent_reads_what_the_store_writes() -> None:
    data = os.urandom(server_manifest.BLOCK_SIZE) + bytes(100)
    written = server_manifest.compute(io.BytesIO(data))
    raw = written.to_json()
    read = parse(raw, hashlib.sha256(raw).hexdigest())
    assert (read.size, read.block_size, read.blocks, read.image_sha256) == (
        written.size, written.block_size, written.blocks, written.image_sha256)
    assert read.span(1) == (server_manifest.BLOCK_SIZE, 100)


def test_a_manifest_with_another_sha256_or_malformed_is_refused() -> None:
    raw = server_manifest.compute(io.BytesIO(os.urandom(1000))).to_json()
    with pytest.raises(CommandError, match="sha256"):
        parse(raw, "0" * 64)
    bad = raw.replace(b'"sha256"', b'"md5"')
    with pytest.raises(CommandError, match="not a valid"):
        parse(bad, hashlib.sha256(bad).hexdigest())


@pytest.mark.parametrize("change", [{"mode": "fast"}, {"manifest_sha256": "abc"},
                                    {"disk_url": "file:///dev/sda"}, {"target_disk": 3}])
def test_bad_params_are_refused_before_anything_runs(change: dict[str, object]) -> None:
    params = {"manifest_url": "http://boot/m", "manifest_sha256": "a" * 64,
              "disk_url": "http://boot/d", **change}
    with pytest.raises(BadParams):
        parse_params(params)
