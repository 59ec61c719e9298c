"""The agent's block-restore parts that need no block device or server: runs, manifest checks,
params, progress (on a file, with every block to write at hand)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from agent.block_fetch import runs
from agent.block_manifest import BlockManifest, parse
from agent.disks import Disk
from agent.errors import BadParams, CommandError
from agent.restore_blocks import RestoreRequest, parse_params, restore_blocks
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


def test_a_delta_restores_progress_counts_a_differing_block_once_it_is_written(
        tmp_path: Path) -> None:
    size, count = 64 * 1024, 16
    image = b"".join(bytes([index + 1]) * size for index in range(count))
    blocks = tuple(hashlib.sha256(image[i * size:(i + 1) * size]).hexdigest()
                   for i in range(count))
    manifest = BlockManifest(len(image), size, hashlib.sha256(image).hexdigest(), blocks)
    differing = {3, 9, count - 1}  # the last one is found when the hashing ends
    on_disk = bytearray(image)
    for index in differing:
        on_disk[index * size:(index + 1) * size] = bytes(size)
    path = tmp_path / "disk"
    path.write_bytes(on_disk)
    disk = Disk(str(path), len(image), is_block=False)

    seen: list[tuple[int, bool]] = []

    def on_progress(done: int, total: int | None) -> None:
        assert total == len(image)
        seen.append((done, path.read_bytes() == image))

    request = RestoreRequest("http://boot/m", "a" * 64, "http://boot/d", "delta", None)
    held = {index: image[index * size:(index + 1) * size] for index in differing}
    result = restore_blocks(request, [disk], 5, on_progress, loaded=(disk, manifest), held=held)
    assert result["verified"] and result["differing_blocks"] == len(differing)
    assert path.read_bytes() == image
    dones = [done for done, _ in seen]
    assert dones == sorted(dones) and dones[-1] == len(image)
    # Half the work is the comparing and fixing: it is reached only once the disk is right.
    assert all(whole for done, whole in seen if done >= len(image) // 2)
    assert any(not whole for _, whole in seen)
