"""deploy.restore_blocks: the real agent process restores file-backed disks from the image store,
served by the boot service's range-read routes under uvicorn on loopback.

Full restore byte-identical; a realistic 2% change (files in a package-like tree, a partition
table edited) restored by fetching exactly the blocks that differ; a block served corrupt once is
repaired; a block always corrupt fails the command and leaves the disk unbootable; a disk smaller
than the image is refused before anything is written.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from services.boot.image_blocks import image_block_routes
from services.drivers.deploy import config_drive
from services.images import tokens
from services.images.store import ImageStore
from tests.integration.test_agent_harness import (
    FakeApi,
    RunningAgent,
    fake_api_fixture,  # noqa: F401 (the fake_api fixture)
    require_tools,
    running_agent,
    sha256_of,
)
from tests.support.asgi import serving
from tests.support.disk_images import (
    MiB,
    change_disk,
    differing_blocks,
    file_bytes,
    make_blank_disk,
    make_os_image,
)

pytestmark = pytest.mark.integration
IMAGE_SIZE = 256 * MiB
DISK_SIZE = IMAGE_SIZE + 8 * MiB  # a little larger than the image, as PCs' disks are
VERSION = "v1"
SECRET = b"shared by the conductor and the boot service"


class CorruptingStore(ImageStore):
    """Serves block ``index`` with one byte flipped, ``times`` times (a faulty cache or link)."""

    corrupt_block: int | None = None
    times = 0

    def read_range(self, version_id: str, offset: int, length: int) -> Iterator[bytes]:
        size = self.manifest(version_id).block_size
        for piece in super().read_range(version_id, offset, length):
            if (self.corrupt_block is not None and self.times > 0
                    and offset // size == self.corrupt_block):
                self.times -= 1
                piece = bytes([piece[0] ^ 0xFF]) + piece[1:]
            offset += len(piece)
            yield piece


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("mke2fs", "debugfs", "sfdisk")
    path = tmp_path_factory.mktemp("image") / "reference.img"
    make_os_image(path, IMAGE_SIZE)
    return path


@pytest.fixture(scope="module")
def store(image: Path, tmp_path_factory: pytest.TempPathFactory) -> CorruptingStore:
    store = CorruptingStore(tmp_path_factory.mktemp("store"), max_bytes=2 * IMAGE_SIZE)
    store.ingest_file(VERSION, image, sha256_of(image))
    return store


@pytest.fixture
def boot_url(store: CorruptingStore) -> Iterator[str]:
    app = Starlette(routes=image_block_routes(store, SECRET))
    store.corrupt_block, store.times = None, 0
    with serving(app) as url:
        yield url


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    return make_blank_disk(tmp_path / "disk.img", DISK_SIZE)


@pytest.fixture
def agent(fake_api: FakeApi, tmp_path: Path, disk: Path) -> Iterator[RunningAgent]:
    with running_agent(fake_api, tmp_path, [disk]) as running:
        yield running


def restore(agent: RunningAgent, store: ImageStore, boot_url: str, disk: Path,
            mode: str, token: str | None = None, **extra: Any) -> dict[str, Any]:
    return agent.run("deploy.restore_blocks", {
        "image_token": token or tokens.issue(SECRET, VERSION, 600),
        "manifest_url": f"{boot_url}/image-versions/{VERSION}/manifest",
        "manifest_sha256": store.manifest_sha256(VERSION),
        "disk_url": f"{boot_url}/image-versions/{VERSION}/disk",
        "mode": mode, "target_disk": str(disk), **extra})


def identical(disk: Path, image: Path) -> bool:
    return hashlib.sha256(file_bytes(disk, IMAGE_SIZE)).hexdigest() == sha256_of(image)


def test_full_restore_is_byte_identical_and_skips_zero_blocks(
        agent: RunningAgent, store: CorruptingStore, boot_url: str, disk: Path,
        image: Path) -> None:
    document = restore(agent, store, boot_url, disk, "full")
    assert document["command_status"] == "SUCCEEDED", document
    result = document["command_result"]
    assert identical(disk, image)
    manifest = store.manifest(VERSION)
    assert result["fetched_bytes"] == manifest.data_bytes < manifest.size
    assert result["verified"] is True
    assert document["progress"]["done_bytes"] == document["progress"]["total_bytes"] > 0
    assert document["progress"]["total_bytes"] == IMAGE_SIZE  # of the image, not of the passes


def test_delta_restore_after_a_two_percent_change_fetches_only_what_differs(
        agent: RunningAgent, store: CorruptingStore, boot_url: str, disk: Path,
        image: Path, tmp_path: Path) -> None:
    shutil.copyfile(image, disk)
    change_disk(disk, 0.02)
    changed = differing_blocks(disk, image, store.manifest(VERSION).block_size, IMAGE_SIZE)
    manifest = store.manifest(VERSION)
    assert 0 in changed and 2 < len(changed) < len(manifest.blocks) // 5, changed
    document = restore(agent, store, boot_url, disk, "delta")
    assert document["command_status"] == "SUCCEEDED", document
    result = document["command_result"]
    assert identical(disk, image)
    assert result["differing_blocks"] == len(changed)
    expected = sum(manifest.block_length(index) for index in changed
                   if manifest.blocks[index] is not None)
    assert result["fetched_bytes"] == expected
    assert result["refetched_blocks"] == 0 and not result["fell_back_to_full"]
    assert document["progress"] == {"done_bytes": IMAGE_SIZE, "total_bytes": IMAGE_SIZE}


def test_a_block_served_corrupt_once_is_fetched_again(
        agent: RunningAgent, store: CorruptingStore, boot_url: str, disk: Path,
        image: Path) -> None:
    shutil.copyfile(image, disk)
    change_disk(disk, 0.02)
    changed = differing_blocks(disk, image, store.manifest(VERSION).block_size, IMAGE_SIZE)
    store.corrupt_block, store.times = changed[-1], 1
    document = restore(agent, store, boot_url, disk, "delta")
    assert document["command_status"] == "SUCCEEDED", document
    assert document["command_result"]["refetched_blocks"] == 1
    assert store.times == 0
    assert identical(disk, image)


def test_a_block_always_corrupt_fails_and_leaves_the_disk_unbootable(
        agent: RunningAgent, store: CorruptingStore, boot_url: str, disk: Path,
        image: Path) -> None:
    shutil.copyfile(image, disk)
    change_disk(disk, 0.02)
    store.corrupt_block, store.times = 0, 1000
    document = restore(agent, store, boot_url, disk, "delta")
    assert document["command_status"] == "FAILED"
    assert "failed its sha256" in document["command_error"]
    assert file_bytes(disk, 512)[510:] != b"\x55\xaa", "no MBR may be left"


def test_a_disk_smaller_than_the_image_is_refused_before_writing(
        fake_api: FakeApi, store: CorruptingStore, boot_url: str, tmp_path: Path) -> None:
    pattern = b"old contents " * 1000
    small = make_blank_disk(tmp_path / "small.img", IMAGE_SIZE - 4 * MiB, pattern)
    before = sha256_of(small)
    with running_agent(fake_api, tmp_path, [small]) as agent:
        document = restore(agent, store, boot_url, small, "full")
    assert document["command_status"] == "FAILED"
    assert "refused, nothing was written" in document["command_error"]
    assert sha256_of(small) == before


def test_a_manifest_with_another_checksum_is_refused(
        agent: RunningAgent, store: CorruptingStore, boot_url: str, disk: Path) -> None:
    status, document = agent.command("deploy.restore_blocks", {
        "manifest_url": f"{boot_url}/image-versions/{VERSION}/manifest",
        "manifest_sha256": "0" * 64, "disk_url": f"{boot_url}/image-versions/{VERSION}/disk",
        "target_disk": str(disk), "image_token": tokens.issue(SECRET, VERSION, 600)})
    assert status == 200
    document = agent.run_poll(document)
    assert document["command_status"] == "FAILED"
    assert "manifest's sha256" in document["command_error"]
    assert file_bytes(disk, MiB) == bytes(MiB)


def test_a_token_for_another_version_or_expired_reads_nothing(
        agent: RunningAgent, store: CorruptingStore, boot_url: str, disk: Path) -> None:
    for token in (tokens.issue(SECRET, "v2", 600), tokens.issue(SECRET, VERSION, -1)):
        document = restore(agent, store, boot_url, disk, "full", token=token)
        assert document["command_status"] == "FAILED"
        assert "HTTP 403" in document["command_error"], document["command_error"]
    assert file_bytes(disk, MiB) == bytes(MiB)


def test_a_config_drive_is_appended_after_the_restored_image(
        fake_api: FakeApi, store: CorruptingStore, boot_url: str, image: Path,
        tmp_path: Path) -> None:
    """The session service's token reaches a PC restored by blocks: the config drive the
    conductor built goes to a partition at the disk's end, outside the image's blocks."""
    disk = make_blank_disk(tmp_path / "large.img", IMAGE_SIZE + 80 * MiB)
    drive = config_drive.build({"openstack/latest/meta_data.json": {"uuid": "pc-1"}})
    with running_agent(fake_api, tmp_path, [disk]) as agent:
        document = restore(agent, store, boot_url, disk, "full", configdrive=drive)
        assert document["command_status"] == "SUCCEEDED", document
        number = document["command_result"]["configdrive_partition"]
        table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], check=True,
                                          capture_output=True, text=True).stdout)
        part = next(p for p in table["partitiontable"]["partitions"]
                    if p["node"].endswith(str(number)))
        iso = gzip.decompress(base64.b64decode(drive))
        with disk.open("rb") as handle:
            handle.seek(part["start"] * 512)
            assert handle.read(len(iso)) == iso
        assert part["start"] * 512 >= IMAGE_SIZE
        # The next delta restore puts the image's own partition table back, nothing else.
        again = restore(agent, store, boot_url, disk, "delta")
    assert again["command_status"] == "SUCCEEDED", again
    assert again["command_result"]["verified"] is True
    assert 1 <= again["command_result"]["differing_blocks"] <= 2


@pytest.mark.parametrize("whole_disk", [True, False],
                         ids=["captured-whole-disk", "state-of-the-image-size"])
def test_a_captured_disk_keeps_its_config_drive_partition_for_the_next_one(
        fake_api: FakeApi, store: CorruptingStore, boot_url: str, tmp_path: Path,
        whole_disk: bool) -> None:
    """A PC deployed with a config drive, captured, restored to another PC with that PC's own
    config drive: the drive goes over the captured config-2 partition (as Ironic reuses one),
    none is added, every other byte is the captured version's. A student's state covers the
    image's size only: its table names the first PC's config drive partition past it, whose
    content it does not hold; the new drive goes there too (there is no room for another)."""
    size = IMAGE_SIZE + 80 * MiB
    reference = make_blank_disk(tmp_path / "reference.img", size)
    target = make_blank_disk(tmp_path / "target.img", size)
    drives = [config_drive.build({"openstack/latest/meta_data.json": {"uuid": f"pc-{n}"}})
              for n in (1, 2)]
    captured_version = "c0ffee00-0000-4000-8000-00000000000" + ("1" if whole_disk else "2")
    with running_agent(fake_api, tmp_path, [reference, target]) as agent:
        first = restore(agent, store, boot_url, reference, "full", configdrive=drives[0])
        assert first["command_status"] == "SUCCEEDED", first
        captured = reference
        if not whole_disk:
            captured = tmp_path / "state.img"
            captured.write_bytes(reference.read_bytes()[:IMAGE_SIZE])
        store.ingest_file(captured_version, captured, sha256_of(captured))
        document = agent.run("deploy.restore_blocks", {
            "image_token": tokens.issue(SECRET, captured_version, 600),
            "manifest_url": f"{boot_url}/image-versions/{captured_version}/manifest",
            "manifest_sha256": store.manifest_sha256(captured_version),
            "disk_url": f"{boot_url}/image-versions/{captured_version}/disk",
            "mode": "full" if whole_disk else "delta", "target_disk": str(target),
            "configdrive": drives[1]})
    assert document["command_status"] == "SUCCEEDED", document
    number = document["command_result"]["configdrive_partition"]
    assert number == first["command_result"]["configdrive_partition"]
    table = json.loads(subprocess.run(["sfdisk", "--json", str(target)], check=True,
                                      capture_output=True, text=True).stdout)
    assert len(table["partitiontable"]["partitions"]) == number  # none added
    part = next(p for p in table["partitiontable"]["partitions"]
                if p["node"].endswith(str(number)))
    start = part["start"] * 512
    iso = gzip.decompress(base64.b64decode(drives[1]))
    written, expected = target.read_bytes(), captured.read_bytes()
    covered = len(expected)
    assert written[start:start + len(iso)] == iso
    assert written[:min(start, covered)] == expected[:min(start, covered)]
    assert written[start + len(iso):covered] == expected[start + len(iso):covered]
