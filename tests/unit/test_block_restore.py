"""Which deploys restore by blocks, and with what: instance_info read by
services/drivers/deploy/block_restore.py against a real image store."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.common.config import Settings
from services.common.models import Node
from services.conductor.task import Task
from services.drivers.deploy.block_restore import block_source, restore_params, write_params
from services.drivers.deploy.iscsi import IscsiWriter
from services.drivers.driver_info import InvalidParameter
from services.images import tokens as image_tokens
from services.images.store import ImageStore

BOOT = "http://boot.example:8080"
VERSION = str(uuid.uuid4())
PLAIN = {"image_source": "http://images.example/debian.img",
         "image_os_hash_algo": "sha256", "image_os_hash_value": "a" * 64}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(
        process={"data_dir": tmp_path},
        boot={"public_url": BOOT},
        images={"store_dir": tmp_path / "store"},
    )
    image = tmp_path / "disk.raw"
    image.write_bytes(os.urandom(64 * 1024))
    ImageStore(settings.effective_image_store_dir, 1 << 30).ingest_file(
        VERSION, image, hashlib.sha256(image.read_bytes()).hexdigest())
    return settings


def node(**instance_info: Any) -> Node:
    return Node(uuid=str(uuid.uuid4()), instance_info=instance_info,
                properties={"root_device": {"name": "/dev/sdb"}})


def test_a_plain_image_keeps_the_download(settings: Settings) -> None:
    assert block_source(node(**PLAIN), settings) is None


@pytest.mark.parametrize("source", [f"{BOOT}/image-versions/{VERSION}/disk", VERSION,
                                    VERSION.upper()], ids=["url", "uuid", "uuid-upper"])
def test_a_version_named_by_image_source_is_restored_in_full_by_default(
        settings: Settings, source: str) -> None:
    target = node(image_source=source)
    found = block_source(target, settings)
    store = ImageStore(settings.effective_image_store_dir, 1 << 30)
    assert found is not None and found.mode == "full"
    assert found.manifest_sha256 == store.manifest_sha256(VERSION)
    params = restore_params(target, settings, found)
    token = params.pop("image_token")
    assert params == {
        "manifest_url": f"{BOOT}/image-versions/{VERSION}/manifest",
        "manifest_sha256": found.manifest_sha256,
        "disk_url": f"{BOOT}/image-versions/{VERSION}/disk", "mode": "full",
        "target_disk": "/dev/sdb"}
    secret = image_tokens.load_secret(settings)
    assert image_tokens.refusal(secret, VERSION, token) is None
    assert image_tokens.refusal(secret, str(uuid.uuid4()), token) is not None


def test_image_version_beside_a_source_asks_for_delta(settings: Settings) -> None:
    found = block_source(node(**PLAIN, image_version=VERSION, image_restore="delta"), settings)
    assert found is not None and (found.version_id, found.mode) == (VERSION, "delta")


def test_a_version_the_store_lacks(settings: Settings) -> None:
    other = str(uuid.uuid4())
    assert block_source(node(**PLAIN, image_version=other), settings) is None
    with pytest.raises(InvalidParameter, match="not in the image store"):
        block_source(node(image_source=other), settings)
    with pytest.raises(InvalidParameter, match="not in the image store"):
        block_source(node(image_source=f"{BOOT}/image-versions/{other}/disk"), settings)


def test_another_services_version_url_is_an_ordinary_source(settings: Settings) -> None:
    found = block_source(node(image_source=f"http://elsewhere/image-versions/{VERSION}/disk",
                              image_os_hash_value="a" * 64), settings)
    assert found is None


def test_partition_images_and_config_drives_are_not_restored_by_blocks(
        settings: Settings) -> None:
    partition = {"image_type": "partition", "kernel": "k", "ramdisk": "r"}
    assert block_source(node(**PLAIN, **partition, image_version=VERSION), settings) is None
    assert block_source(node(**PLAIN, configdrive="H4sI", image_version=VERSION),
                        settings) is None
    with pytest.raises(InvalidParameter, match="cannot be restored by delta: a partition image"):
        block_source(node(image_source=VERSION, image_restore="delta", root_mb=16,
                          **partition), settings)


@pytest.mark.parametrize("extra", [
    {"image_type": "partition", "kernel": "k", "ramdisk": "r", "root_mb": 16},
    {"configdrive": "H4sI"}])
def test_a_store_version_blocks_cannot_restore_is_written_from_the_store(
        settings: Settings, extra: dict[str, Any]) -> None:
    """A version named by image_source: standby.write_image reads the store's disk with an
    image token, and checks the version's sha256."""
    target = node(image_source=VERSION, **extra)
    found = block_source(target, settings)
    assert found is not None and found.by_blocks is False and found.mode == "full"
    manifest = ImageStore(settings.effective_image_store_dir, 1 << 30).manifest(VERSION)
    params = write_params(target, settings, found)
    assert params["image_url"] == f"{BOOT}/image-versions/{VERSION}/disk"
    assert (params["image_os_hash_algo"], params["image_os_hash_value"]) == (
        "sha256", manifest.image_sha256)
    assert params["image_disk_format"] == "raw"
    assert params["image_type"] == extra.get("image_type", "whole-disk")
    assert image_tokens.refusal(image_tokens.load_secret(settings), VERSION,
                                params["image_token"]) is None


@pytest.mark.parametrize(("info", "message"), [
    ({"image_source": VERSION, "image_restore": "quick"}, "image_restore must be one of"),
    ({**PLAIN, "image_restore": "delta"}, "needs a catalogue image version"),
    ({**PLAIN, "image_version": "debian:v1"}, "image_version must be an image version's UUID"),
])
def test_bad_values_are_refused(settings: Settings, info: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        block_source(node(**info), settings)


def test_the_iscsi_interface_refuses_a_version_only_the_store_has(settings: Settings) -> None:
    """The conductor writes iscsi deploys from a URL: a version named by image_source is
    refused with the way out; image_version beside a URL (a room's restore) is accepted."""
    writer = IscsiWriter(settings)
    task = Task(None, node(image_source=VERSION), None, "c1")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="use the direct deploy interface"):
        writer.validate(task)
    task.node = node(**PLAIN, image_version=VERSION, image_restore="quick")
    with pytest.raises(InvalidParameter, match="image_restore must be one of"):
        writer.validate(task)
    task.node = node(**PLAIN, image_version=VERSION, image_restore="delta")
    writer.validate(task)
