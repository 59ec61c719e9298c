"""The virtual media ISO cache (services/drivers/boot/vmedia_cache.py) with the real ISO tools
and files served over loopback HTTP: one build per content, shared by the nodes whose ISO it
is, never evicted while a node has it, evicted least recently used once none has; and the
instance files of a diskless node read from the catalogue version ``image_source`` names, as
Ironic reads a Glance image's ``kernel_id``/``ramdisk_id``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest

from services.common.classroom_models import Image, ImageVersion
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node
from services.drivers.base import MissingParameters
from services.drivers.boot import instance_ramdisk, vmedia_iso
from services.drivers.boot.vmedia_cache import IsoCache
from services.drivers.driver_info import InvalidParameter
from tests.support.static_http import serving_directory

pytestmark = pytest.mark.skipif(bool(vmedia_iso.missing_tools()),
                                reason="the ISO tools are not installed")
MiB = 1024 * 1024
HOUR_S = 3600
NODE_A, NODE_B = "0d4c3b8e-5f55-4c1b-9a55-3f1f6c1d2a01", "0d4c3b8e-5f55-4c1b-9a55-3f1f6c1d2a02"
VERSION = "6b1f3c2e-8d7a-4e5b-9c0d-1a2b3c4d5e6f"
NO_KERNEL = "6b1f3c2e-8d7a-4e5b-9c0d-1a2b3c4d5e60"


class QuietHandler(SimpleHTTPRequestHandler):
    downloads: ClassVar[list[str]] = []  # the paths of the GETs answered

    def do_GET(self) -> None:
        QuietHandler.downloads.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``tmp_path/inputs`` over HTTP on loopback: a kernel of 1 MiB, a ramdisk of 6 MiB, last
    modified an hour ago (a Last-Modified that identifies their content: see
    ``test_a_file_modified_within_the_minute_is_downloaded_at_each_prepare``)."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "vmlinuz").write_bytes(b"\x7fkernel" * (MiB // 7))
    (inputs / "initrd").write_bytes(bytes(range(256)) * (6 * MiB // 256))
    for name in ("vmlinuz", "initrd"):
        dated(inputs / name, HOUR_S)
    with serving_directory(inputs, QuietHandler) as url:
        yield url


def dated(path: Path, age_s: float) -> None:
    os.utime(path, (time.time() - age_s, time.time() - age_s))


def isos(tmp_path: Path, max_bytes: int = 1024 * MiB) -> IsoCache:
    return IsoCache(Settings(process={"data_dir": tmp_path / "data"},
                             images={"cache_max_bytes": max_bytes}))


def test_one_build_per_content_shared_by_nodes_and_timed(served: str, tmp_path: Path) -> None:
    cache = isos(tmp_path)
    files = {"deploy_kernel": f"{served}/vmlinuz", "deploy_ramdisk": f"{served}/initrd"}
    params = "enclume.api_url=http://192.0.2.1:6385"

    started = time.monotonic()
    first = cache.publish(NODE_A, files, params)
    built_s = time.monotonic() - started
    QuietHandler.downloads.clear()
    started = time.monotonic()
    second = cache.publish(NODE_B, files, params)
    reused_s = time.monotonic() - started
    print(f"vmedia ISO prepare (7 MiB kernel + ramdisk): built {built_s:.2f} s, "
          f"reused {reused_s:.2f} s")

    assert not first.reused and second.reused and first.key == second.key
    assert QuietHandler.downloads == []  # HEAD answered the same Last-Modified: no download
    assert cache.node_iso(NODE_A).samefile(cache.node_iso(NODE_B))  # one file, two names
    assert first.url_name == f"vmedia/{NODE_A}.iso"
    other = cache.publish(NODE_B, files, f"{params} enclume.node={NODE_B}")
    assert not other.reused and other.key != first.key
    assert not cache.node_iso(NODE_A).samefile(cache.node_iso(NODE_B))
    assert sorted(p.name for p in cache.cache().directory.glob("iso-*")) == sorted(
        (first.key, other.key))

    # A ramdisk replaced on its server (a new Last-Modified) is downloaded: a new ISO.
    ramdisk = tmp_path / "inputs" / "initrd"
    ramdisk.write_bytes(b"new" + ramdisk.read_bytes()[3:])
    dated(ramdisk, HOUR_S / 2)
    QuietHandler.downloads.clear()
    changed = cache.publish(NODE_A, files, params)
    assert not changed.reused and changed.key not in (first.key, other.key)
    assert QuietHandler.downloads == ["/vmlinuz", "/initrd"]


def test_a_file_modified_within_the_minute_is_downloaded_at_each_prepare(
        served: str, tmp_path: Path) -> None:
    """The file server gives no ETag, and a Last-Modified of one-second resolution: the
    ramdisk just written could be written again within the same second, so its sha256 is not
    remembered (RFC 9110's weak Last-Modified) and each prepare downloads it."""
    cache = isos(tmp_path)
    ramdisk = tmp_path / "inputs" / "initrd"
    dated(ramdisk, 0)
    written = ramdisk.stat().st_mtime
    files = {"kernel": f"{served}/vmlinuz", "ramdisk": f"{served}/initrd"}
    first = cache.publish(NODE_A, files, "a")
    ramdisk.write_bytes(b"new" + ramdisk.read_bytes()[3:])  # same size,
    os.utime(ramdisk, (written, written))  # and within the same second: the same validators
    QuietHandler.downloads.clear()
    second = cache.publish(NODE_A, files, "a")
    assert not second.reused and second.key != first.key
    assert QuietHandler.downloads == ["/vmlinuz", "/initrd"]


def test_an_inserted_iso_is_never_evicted_an_ejected_one_is_first(
        served: str, tmp_path: Path) -> None:
    cache = isos(tmp_path, max_bytes=20 * MiB)  # room for one ISO of ~7 MiB and a new one
    files = {"kernel": f"{served}/vmlinuz", "ramdisk": f"{served}/initrd"}
    a = cache.publish(NODE_A, files, "a")
    b = cache.publish(NODE_B, files, "b")
    directory = cache.cache().directory
    assert {a.key, b.key} <= {p.name for p in directory.iterdir()}  # both inserted: kept

    c = cache.publish(NODE_B, files, "c")  # node B's ISO changes: "b" is no longer inserted
    names = {p.name for p in directory.iterdir()}
    assert a.key in names and c.key in names and b.key not in names
    cache.withdraw(NODE_A)
    assert not cache.node_iso(NODE_A).exists() and (directory / a.key).exists()
    cache.publish(NODE_A, files, "d")
    assert a.key not in {p.name for p in directory.iterdir()}  # evicted once ejected


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path_factory.mktemp('catalogue') / 'db.sqlite'}"
    upgrade_schema(url)
    database = Database(url)
    with database.session() as session:
        image = Image(name="diskless")
        session.add(image)
        session.flush()
        session.add(ImageVersion(uuid=VERSION, image_id=image.id, version="v1",
                                 source="http://192.0.2.5/root.img", checksum="a" * 64,
                                 disk_format="raw", image_type="partition",
                                 kernel="diskless.vmlinuz", ramdisk="http://192.0.2.5/initrd",
                                 boot_mode="uefi"))
        session.add(ImageVersion(uuid=NO_KERNEL, image_id=image.id, version="v0",
                                 source="http://192.0.2.5/whole.img", checksum="b" * 64,
                                 disk_format="raw", image_type="whole-disk", boot_mode="uefi"))
    yield database


@pytest.mark.parametrize(("instance_info", "expected"), [
    ({"image_source": VERSION},
     {"kernel": "http://boot.test/files/diskless.vmlinuz", "ramdisk": "http://192.0.2.5/initrd"}),
    ({"image_source": VERSION, "kernel": "http://192.0.2.9/own-kernel"},
     {"kernel": "http://192.0.2.9/own-kernel", "ramdisk": "http://192.0.2.5/initrd"}),
    ({"image_source": "http://boot.test/image-versions/" + VERSION + "/disk"},
     {"kernel": "http://boot.test/files/diskless.vmlinuz", "ramdisk": "http://192.0.2.5/initrd"}),
], ids=["version-uuid", "own-kernel-first", "version-disk-url"])
def test_a_catalogue_version_gives_the_kernel_and_ramdisk(
        db: Database, instance_info: dict[str, str], expected: dict[str, str]) -> None:
    settings = Settings(boot={"public_url": "http://boot.test"})
    with db.session() as session:
        node = Node(uuid=NODE_A, driver="redfish", instance_info=instance_info)
        session.add(node)
        assert instance_ramdisk.instance_files(settings, node) == expected
        session.rollback()  # the node is not kept: the next test's has the same UUID


def test_a_version_without_kernel_or_an_unknown_one_is_refused(db: Database) -> None:
    settings = Settings(boot={"public_url": "http://boot.test"})
    with db.session() as session:
        node = Node(uuid=NODE_A, driver="redfish", instance_info={"image_source": NO_KERNEL})
        session.add(node)
        with pytest.raises(MissingParameters, match=r"Missing are: \['kernel', 'ramdisk'\]"):
            instance_ramdisk.instance_files(settings, node)
        node.instance_info = {"image_source": NODE_B}
        with pytest.raises(InvalidParameter, match="which the catalogue does not have"):
            instance_ramdisk.instance_files(settings, node)
        session.rollback()
