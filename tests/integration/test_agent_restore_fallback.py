"""deploy.restore_blocks on a disk that loses writes: the verification after a delta restore
catches blocks the disk did not keep, its refetch rounds write them again, then the fallback to a
full write; a disk that never keeps a block fails the command and is left unbootable.

The real agent process and the boot service's range reads (as test_agent_restore_blocks.py),
on the FUSE disk of tests/support/faulty_disk.py (fault injection: nothing real here loses
writes). The image is 16 MiB (4 blocks of 4 MiB) so each test takes about a second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from starlette.applications import Starlette

from agent.restore_blocks import REPAIR_ROUNDS
from services.boot.image_blocks import image_block_routes
from services.images.store import ImageStore
from tests.integration.test_agent_harness import (
    FakeApi,
    fake_api_fixture,  # noqa: F401 (the fake_api fixture)
    require_tools,
    running_agent,
    sha256_of,
)
from tests.integration.test_agent_restore_blocks import SECRET, VERSION, restore
from tests.support.asgi import serving
from tests.support.disk_images import MiB, file_bytes, make_os_image
from tests.support.faulty_disk import FaultyDisk, mounted_faulty_disk, used_disk

pytestmark = pytest.mark.integration
IMAGE_SIZE = 16 * MiB
DISK_SIZE = IMAGE_SIZE + 4 * MiB
LOST_BLOCK = 2  # bytes 8-12 MiB: data of the ext4 partition
LOST_RANGE = (LOST_BLOCK * 4 * MiB, LOST_BLOCK * 4 * MiB + 4096)
# What the agent writes of the lost block: the delta, each refetch round, the full write.
WRITES_BEFORE_FALLBACK = 1 + REPAIR_ROUNDS


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("mke2fs", "debugfs", "sfdisk")
    path = tmp_path_factory.mktemp("small-image") / "reference.img"
    make_os_image(path, IMAGE_SIZE)
    return path


@pytest.fixture(scope="module")
def store(image: Path, tmp_path_factory: pytest.TempPathFactory) -> ImageStore:
    store = ImageStore(tmp_path_factory.mktemp("small-store"), max_bytes=2 * IMAGE_SIZE)
    store.ingest_file(VERSION, image, sha256_of(image))
    manifest = store.manifest(VERSION)
    assert manifest.block_size == 4 * MiB and manifest.blocks[LOST_BLOCK] is not None
    return store


@pytest.fixture
def boot_url(store: ImageStore) -> Iterator[str]:
    with serving(Starlette(routes=image_block_routes(store, SECRET))) as url:
        yield url


def faulty(tmp_path: Path, image: Path, times: int) -> AbstractContextManager[FaultyDisk]:
    backing = used_disk(tmp_path / "backing.img", image, DISK_SIZE, LOST_RANGE[0])
    return mounted_faulty_disk(backing, tmp_path, [(*LOST_RANGE, times)])


def identical(disk: Path, image: Path) -> bool:
    return hashlib.sha256(file_bytes(disk, IMAGE_SIZE)).hexdigest() == sha256_of(image)


@pytest.mark.parametrize(("lost_writes", "falls_back"), [
    (1, False),  # the first refetch round repairs it
    (WRITES_BEFORE_FALLBACK, True),  # delta and every round lost: the full write repairs it
])
def test_a_block_the_disk_did_not_keep_is_written_again_until_it_verifies(
        fake_api: FakeApi, store: ImageStore, boot_url: str, image: Path, tmp_path: Path,
        lost_writes: int, falls_back: bool) -> None:
    with faulty(tmp_path, image, lost_writes) as disk, \
            running_agent(fake_api, tmp_path, [disk.path]) as agent:
        document = restore(agent, store, boot_url, disk.path, "delta")
        counts = disk.counts()
    assert document["command_status"] == "SUCCEEDED", document
    result = document["command_result"]
    assert result["verified"] is True
    assert result["fell_back_to_full"] is falls_back
    assert result["differing_blocks"] == 1
    # fetched again by each refetch round that ran (the full write is not a refetch)
    assert result["refetched_blocks"] == min(lost_writes, REPAIR_ROUNDS)
    lost = counts["ranges"][0]  # type: ignore[index]
    assert lost["dropped"] == lost_writes and lost["landed"] == 1, counts
    assert identical(disk.backing, image)


def test_a_block_the_disk_never_keeps_fails_the_restore_and_leaves_it_unbootable(
        fake_api: FakeApi, store: ImageStore, boot_url: str, image: Path,
        tmp_path: Path) -> None:
    with faulty(tmp_path, image, 1000) as disk, \
            running_agent(fake_api, tmp_path, [disk.path]) as agent:
        document = restore(agent, store, boot_url, disk.path, "delta")
        counts = disk.counts()
    assert document["command_status"] == "FAILED", document
    assert "verified" not in (document.get("command_result") or {})
    error = document["command_error"]
    assert f"do not match the manifest after the restore (first: block {LOST_BLOCK})" in error
    lost = counts["ranges"][0]  # type: ignore[index]
    assert lost["dropped"] == WRITES_BEFORE_FALLBACK + 1 and lost["landed"] == 0, counts
    head = file_bytes(disk.backing, MiB)
    assert head[510:512] != b"\x55\xaa" and head == bytes(MiB), "the MBR must be wiped"
