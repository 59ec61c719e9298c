"""standby.write_image on file-backed disks, images served over loopback HTTP.

Every image kind (raw and qcow2; whole-disk and partition; with a config drive), and every
failure the issue names: checksum mismatch, truncated download, write error. A failed write must
leave no bootable image behind.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_agent_harness import (
    FakeApi,
    ImageServer,
    MiB,
    RunningAgent,
    config_drive,
    fake_api_fixture,  # noqa: F401 (the fake_api fixture)
    image_server_fixture,  # noqa: F401 (the image_server fixture)
    make_disk,
    partition_image,
    qcow2_of,
    require_tools,
    run_tool,
    running_agent,
    sha256_of,
    whole_disk_image,
)

pytestmark = pytest.mark.integration
DISK_SIZE = 256 * MiB
MBR_CODE = "/usr/lib/EXTLINUX/mbr.bin"


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    require_tools()
    return make_disk(tmp_path / "disk.img", DISK_SIZE)


@pytest.fixture
def agent(fake_api: FakeApi, tmp_path: Path, disk: Path) -> Iterator[RunningAgent]:
    with running_agent(fake_api, tmp_path, [disk]) as running:
        yield running


def params(server: ImageServer, name: str, path: Path, **extra: object) -> dict[str, object]:
    return {"image_url": f"{server.url}/{name}", "image_os_hash_algo": "sha256",
            "image_os_hash_value": sha256_of(path), "image_disk_format": "raw",
            "image_type": "whole-disk", **extra}


def head(disk: Path, size: int = MiB) -> bytes:
    with disk.open("rb") as handle:
        return handle.read(size)


def tail(disk: Path, size: int = MiB) -> bytes:
    with disk.open("rb") as handle:
        handle.seek(-size, os.SEEK_END)
        return handle.read(size)


def assert_unbootable(disk: Path) -> None:
    assert head(disk) == bytes(MiB), "the first MiB (MBR, GPT) must be wiped"
    assert tail(disk) == bytes(MiB), "the last MiB (backup GPT) must be wiped"
    done = subprocess.run(["sfdisk", "--dump", str(disk)], capture_output=True)
    assert done.returncode != 0, "no partition table may be left"


def write_good_image(agent: RunningAgent, server: ImageServer, disk: Path) -> bytes:
    """A previous deployment on the disk, so a failure has something bootable to destroy."""
    image = server.root / "previous.img"
    data = whole_disk_image(image, 24 * MiB, label="gpt")
    document = agent.run("standby.write_image", params(server, "previous.img", image))
    assert document["command_status"] == "SUCCEEDED", document
    assert head(disk, 512 * 3)[512:520] == b"EFI PART"
    return data


# --- whole-disk images --------------------------------------------------------------------


def test_whole_disk_raw_image_is_written_byte_for_byte(agent: RunningAgent,
                                                      image_server: ImageServer,
                                                      disk: Path) -> None:
    image = image_server.root / "disk.raw"
    data = whole_disk_image(image, 40 * MiB, zero_fraction=0.75)
    make_disk(disk, DISK_SIZE)
    with disk.open("r+b") as handle:  # stale bytes where the image has zeros must go
        handle.seek(20 * MiB)
        handle.write(b"\xff" * MiB)
    status, started = agent.command("standby.write_image", params(image_server, "disk.raw",
                                                                   image))
    assert status == 200 and started["command_status"] == "RUNNING", started
    document = agent.run_poll(started)
    assert document["command_status"] == "SUCCEEDED", document
    assert head(disk, len(data)) == data
    result = document["command_result"]
    assert result["target_disk"] == str(disk)
    assert result["image_size"] == len(data)
    assert result["skipped_zero_bytes"] >= 16 * MiB  # zero 8 MiB chunks: punched, not written
    assert document["progress"] == {"done_bytes": len(data), "total_bytes": len(data)}
    allocated = os.stat(disk).st_blocks * 512
    assert allocated < 16 * MiB, f"zeros were written, not skipped: {allocated} bytes allocated"


def test_chunked_download_without_length_is_written(agent: RunningAgent,
                                                   image_server: ImageServer,
                                                   disk: Path) -> None:
    image = image_server.root / "disk.raw"
    data = whole_disk_image(image, 20 * MiB)
    document = agent.run("standby.write_image", params(image_server, "chunked/disk.raw", image))
    assert document["command_status"] == "SUCCEEDED", document
    assert head(disk, len(data)) == data


@pytest.mark.parametrize("algorithm", ["md5", "sha512", "legacy-md5", "legacy-prefixed"])
def test_other_checksum_algorithms(agent: RunningAgent, image_server: ImageServer,
                                   disk: Path, algorithm: str) -> None:
    image = image_server.root / "disk.raw"
    data = whole_disk_image(image, 8 * MiB)
    base = {"image_url": f"{image_server.url}/disk.raw", "image_disk_format": "raw"}
    if algorithm == "legacy-md5":
        base["image_checksum"] = hashlib.md5(data).hexdigest()
    elif algorithm == "legacy-prefixed":
        base["image_checksum"] = "sha512:" + hashlib.sha512(data).hexdigest()
    else:
        base.update(image_os_hash_algo=algorithm,
                    image_os_hash_value=hashlib.new(algorithm, data).hexdigest())
    document = agent.run("standby.write_image", base)
    assert document["command_status"] == "SUCCEEDED", document
    assert head(disk, len(data)) == data


def test_whole_disk_qcow2_staged_on_the_disk_tail(agent: RunningAgent,
                                                  image_server: ImageServer,
                                                  disk: Path) -> None:
    raw = image_server.root / "source.raw"
    data = whole_disk_image(raw, 32 * MiB)
    image = qcow2_of(raw, image_server.root / "disk.qcow2")
    document = agent.run("standby.write_image", params(image_server, "disk.qcow2", image,
                                                       image_disk_format="qcow2"))
    assert document["command_status"] == "SUCCEEDED", document
    assert head(disk, len(data)) == data
    assert document["command_result"]["virtual_size"] == len(data)


def test_whole_disk_qcow2_staged_in_memory_when_the_tail_is_too_small(
        fake_api: FakeApi, image_server: ImageServer, tmp_path: Path) -> None:
    require_tools()
    raw = image_server.root / "source.raw"
    data = whole_disk_image(raw, 32 * MiB, zero_fraction=0.2)
    image = qcow2_of(raw, image_server.root / "disk.qcow2")
    small = make_disk(tmp_path / "small.img", 34 * MiB)  # image + qcow2 do not both fit
    with running_agent(fake_api, tmp_path, [small]) as agent:
        document = agent.run("standby.write_image", params(
            image_server, "chunked/disk.qcow2", image, image_disk_format="qcow2"))
    assert document["command_status"] == "SUCCEEDED", document
    assert head(small, len(data)) == data
    assert not list(tmp_path.glob("enclume-qcow2-*")), "the staging file must be removed"


def test_qcow2_with_a_backing_file_is_refused(agent: RunningAgent,
                                              image_server: ImageServer, disk: Path) -> None:
    base = image_server.root / "base.qcow2"
    run_tool("qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M")
    image = image_server.root / "overlay.qcow2"
    run_tool("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base),
             str(image))
    document = agent.run("standby.write_image", params(image_server, "overlay.qcow2", image,
                                                       image_disk_format="qcow2"))
    assert document["command_status"] == "FAILED"
    assert "backing file" in document["command_error"]


def test_qcow2_with_an_external_data_file_is_refused(agent: RunningAgent,
                                                     image_server: ImageServer,
                                                     disk: Path) -> None:
    """qemu-img would open the file the header names (in the ramdisk) as the image's data."""
    data_file = image_server.root / "outside.raw"
    image = image_server.root / "external.qcow2"
    run_tool("qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={data_file}",
             str(image), "16M")
    document = agent.run("standby.write_image", params(image_server, "external.qcow2", image,
                                                       image_disk_format="qcow2"))
    assert document["command_status"] == "FAILED"
    assert "external data file" in document["command_error"]
    assert_unbootable(disk)


def test_qcow2_without_a_declared_format_is_found_and_converted(
        agent: RunningAgent, image_server: ImageServer, disk: Path) -> None:
    raw = image_server.root / "source.raw"
    data = whole_disk_image(raw, 16 * MiB)
    image = qcow2_of(raw, image_server.root / "disk.qcow2")
    request = params(image_server, "disk.qcow2", image)
    del request["image_disk_format"]
    document = agent.run("standby.write_image", request)
    assert document["command_status"] == "SUCCEEDED", document
    assert document["command_result"]["disk_format"] == "qcow2"
    assert head(disk, len(data)) == data


def test_an_image_that_is_not_what_image_disk_format_says_is_refused(
        agent: RunningAgent, image_server: ImageServer, disk: Path) -> None:
    write_good_image(agent, image_server, disk)
    raw = image_server.root / "source.raw"
    whole_disk_image(raw, 16 * MiB)
    image = qcow2_of(raw, image_server.root / "disk.qcow2")
    document = agent.run("standby.write_image", params(image_server, "disk.qcow2", image,
                                                       image_disk_format="raw"))
    assert document["command_status"] == "FAILED"
    assert "is qcow2, but image_disk_format says raw" in document["command_error"]
    assert_unbootable(disk)  # as after every failed write: the previous image must not boot


def test_a_vmdk_image_is_refused(agent: RunningAgent, image_server: ImageServer,
                                 disk: Path) -> None:
    raw = image_server.root / "source.raw"
    whole_disk_image(raw, 8 * MiB)
    image = image_server.root / "disk.vmdk"
    run_tool("qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", str(raw), str(image))
    request = params(image_server, "disk.vmdk", image)
    del request["image_disk_format"]
    document = agent.run("standby.write_image", request)
    assert document["command_status"] == "FAILED"
    assert "is a vmdk image; only raw and qcow2" in document["command_error"]


def test_whole_disk_image_with_config_drive_partition_at_the_end(
        agent: RunningAgent, image_server: ImageServer, disk: Path,
        tmp_path: Path) -> None:
    image = image_server.root / "disk.raw"
    data = whole_disk_image(image, 24 * MiB, label="gpt")
    drive = config_drive(tmp_path, {"uuid": agent.node.uuid, "hostname": "node-1"})
    document = agent.run("standby.write_image", params(
        image_server, "disk.raw", image,
        configdrive=base64.b64encode(gzip.compress(drive)).decode()))
    assert document["command_status"] == "SUCCEEDED", document
    dump = json.loads(run_tool("sfdisk", "--json", str(disk)))["partitiontable"]
    assert dump["label"] == "gpt"
    last = dump["partitions"][-1]
    assert (last["start"] + last["size"]) * 512 > DISK_SIZE - 2 * MiB, "at the end of the disk"
    assert last["size"] * 512 == 64 * MiB
    with disk.open("rb") as handle:
        handle.seek(last["start"] * 512)
        assert handle.read(len(drive)) == drive
    # the image's own bytes are untouched, except the GPT moved to the disk's real end
    assert head(disk, 512)[:446] == data[:446]
    assert head(disk, len(data))[2 * MiB:20 * MiB] == data[2 * MiB:20 * MiB]
    verify = subprocess.run(["sfdisk", "--verify", str(disk)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert document["command_result"]["configdrive_partition"] == len(dump["partitions"])


def test_config_drive_from_a_url(agent: RunningAgent, image_server: ImageServer,
                                 disk: Path, tmp_path: Path) -> None:
    image = image_server.root / "disk.raw"
    whole_disk_image(image, 16 * MiB)
    drive = config_drive(tmp_path, {"uuid": "x"})
    (image_server.root / "cd.iso.gz").write_bytes(gzip.compress(drive))
    document = agent.run("standby.write_image", params(
        image_server, "disk.raw", image, configdrive=f"{image_server.url}/cd.iso.gz"))
    assert document["command_status"] == "SUCCEEDED", document
    dump = json.loads(run_tool("sfdisk", "--json", str(disk)))["partitiontable"]
    with disk.open("rb") as handle:
        handle.seek(dump["partitions"][-1]["start"] * 512)
        assert handle.read(len(drive)) == drive


def test_config_drive_without_the_config_2_label_is_refused_before_anything(
        agent: RunningAgent, image_server: ImageServer, disk: Path) -> None:
    image = image_server.root / "disk.raw"
    whole_disk_image(image, 8 * MiB)
    status, answer = agent.command("standby.write_image", params(
        image_server, "disk.raw", image,
        configdrive=base64.b64encode(gzip.compress(b"x" * 70000)).decode()))
    assert status == 400 and "config-2" in answer["error"]
    assert head(disk) == bytes(MiB)


# --- partition images ---------------------------------------------------------------------


@pytest.mark.parametrize("disk_format", ["raw", "qcow2"])
def test_partition_image_gets_table_swap_config_drive_and_boot_loader(
        agent: RunningAgent, image_server: ImageServer, disk: Path, tmp_path: Path,
        disk_format: str) -> None:
    image = partition_image(image_server.root / "root.img")
    root_fs = image.read_bytes()
    if disk_format == "qcow2":
        image = qcow2_of(image, image_server.root / "root.qcow2")
    drive = config_drive(tmp_path, {"uuid": agent.node.uuid})
    document = agent.run("standby.write_image", params(
        image_server, image.name, image, image_disk_format=disk_format,
        image_type="partition", root_mb=24, swap_mb=8,
        configdrive=base64.b64encode(gzip.compress(drive)).decode()))
    assert document["command_status"] == "SUCCEEDED", document
    table = json.loads(run_tool("sfdisk", "--json", str(disk)))["partitiontable"]
    assert table["label"] == "dos"
    root, swap, drive_part = table["partitions"]
    assert (root["start"], root["size"], root["type"], root.get("bootable")) == (
        2048, 24 * 2048, "83", True)
    assert (swap["start"], swap["size"], swap["type"]) == (25 * 2048, 8 * 2048, "82")
    assert (drive_part["start"] + drive_part["size"]) * 512 == DISK_SIZE
    with disk.open("rb") as handle:
        handle.seek(swap["start"] * 512 + 4096 - 10)
        assert handle.read(10) == b"SWAPSPACE2"
        handle.seek(drive_part["start"] * 512)
        assert handle.read(len(drive)) == drive
        assert handle.seek(0) == 0 and handle.read(440) == Path(MBR_CODE).read_bytes()[:440]
    result = document["command_result"]
    assert result["partitions"] == {"root": 1, "swap": 2, "configdrive": 3}
    # the root file system is the image, plus EXTLINUX; its config boots the newest kernel
    extlinux = files_in_root(disk, root["start"] * 512, root["size"] * 512)
    assert "ldlinux.sys" in extlinux["listing"]
    assert "LINUX /boot/vmlinuz-6.1.0-test" in extlinux["config"]
    assert "INITRD /boot/initrd.img-6.1.0-test" in extlinux["config"]
    assert f"root=UUID={result['root_uuid']}" in extlinux["config"]
    assert extlinux["hostname"] == "deployed\n"
    assert len(root_fs) <= root["size"] * 512


def test_uefi_partition_image_gets_gpt_and_an_efi_system_partition(
        agent: RunningAgent, image_server: ImageServer, disk: Path, tmp_path: Path) -> None:
    image = partition_image(image_server.root / "root.img")
    drive = config_drive(tmp_path, {"uuid": agent.node.uuid})
    document = agent.run("standby.write_image", params(
        image_server, image.name, image, image_type="partition", root_mb=24, swap_mb=4,
        boot_mode="uefi", configdrive=base64.b64encode(gzip.compress(drive)).decode()))
    assert document["command_status"] == "SUCCEEDED", document
    table = json.loads(run_tool("sfdisk", "--json", str(disk)))["partitiontable"]
    assert table["label"] == "gpt"
    esp, root, swap, drive_part = table["partitions"]
    assert esp["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" and esp["start"] == 2048
    assert (root["start"], root["size"]) == (129 * 2048, 24 * 2048)
    assert swap["type"] == "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
    with disk.open("rb") as handle:
        handle.seek(root["start"] * 512)
        assert handle.read(len(image.read_bytes())) == image.read_bytes()
        handle.seek(drive_part["start"] * 512)
        assert handle.read(len(drive)) == drive
    esp_image = f"{disk}@@{esp['start'] * 512}"
    entry = run_tool("mtype", "-i", esp_image, "::/loader/entries/enclume.conf")
    assert "linux /enclume/vmlinuz" in entry and "initrd /enclume/initrd" in entry
    assert f"root=UUID={document['command_result']['root_uuid']}" in entry
    assert run_tool("mtype", "-i", esp_image, "::/enclume/vmlinuz") == "kernel"
    bootx64 = subprocess.run(["mtype", "-i", esp_image, "::/EFI/BOOT/BOOTX64.EFI"],
                             capture_output=True, check=True).stdout
    assert bootx64 == Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi").read_bytes()
    assert document["command_result"]["partitions"] == {"esp": 1, "root": 2, "swap": 3,
                                                        "configdrive": 4}


def files_in_root(disk: Path, offset: int, size: int) -> dict[str, str]:
    loop = run_tool("losetup", "--find", "--show", "--read-only", "--offset", str(offset),
                    "--sizelimit", str(size), str(disk)).strip()
    try:
        listing = run_tool("debugfs", "-R", "ls -l /boot/extlinux", loop)
        config = run_tool("debugfs", "-R", "cat /boot/extlinux/extlinux.conf", loop)
        hostname = run_tool("debugfs", "-R", "cat /etc/hostname", loop)
    finally:
        subprocess.run(["losetup", "--detach", loop], check=False)
    return {"listing": listing, "config": config, "hostname": hostname}


def test_partition_image_larger_than_root_mb_fails_and_leaves_nothing_bootable(
        agent: RunningAgent, image_server: ImageServer, disk: Path) -> None:
    write_good_image(agent, image_server, disk)
    image = partition_image(image_server.root / "root.img", size=16 * MiB)
    document = agent.run("standby.write_image", params(
        image_server, "root.img", image, image_type="partition", root_mb=8))
    assert document["command_status"] == "FAILED"
    assert "larger than the space" in document["command_error"]
    assert_unbootable(disk)


# --- failures -----------------------------------------------------------------------------


def test_checksum_mismatch_fails_and_leaves_the_disk_unbootable(
        agent: RunningAgent, image_server: ImageServer, disk: Path) -> None:
    write_good_image(agent, image_server, disk)
    image = image_server.root / "corrupt.raw"
    whole_disk_image(image, 24 * MiB)
    wrong = hashlib.sha256(b"something else").hexdigest()
    document = agent.run("standby.write_image", {
        **params(image_server, "corrupt.raw", image), "image_os_hash_value": wrong})
    assert document["command_status"] == "FAILED"
    assert document["command_error"].startswith("checksum mismatch")
    assert wrong in document["command_error"]
    assert_unbootable(disk)


def test_corrupt_qcow2_fails_and_leaves_the_disk_unbootable(
        agent: RunningAgent, image_server: ImageServer, disk: Path) -> None:
    write_good_image(agent, image_server, disk)
    raw = image_server.root / "source.raw"
    whole_disk_image(raw, 16 * MiB)
    image = qcow2_of(raw, image_server.root / "bad.qcow2")
    with image.open("r+b") as handle:  # cluster_bits: 2^99-byte clusters do not exist
        handle.seek(20)
        handle.write((99).to_bytes(4, "big"))
    document = agent.run("standby.write_image", params(image_server, "bad.qcow2", image,
                                                       image_disk_format="qcow2"))
    assert document["command_status"] == "FAILED"
    assert "qcow2" in document["command_error"]
    assert_unbootable(disk)


def test_truncated_download_fails_and_leaves_the_disk_unbootable(
        agent: RunningAgent, image_server: ImageServer, disk: Path) -> None:
    write_good_image(agent, image_server, disk)
    image = image_server.root / "disk.raw"
    whole_disk_image(image, 24 * MiB)
    document = agent.run("standby.write_image", params(image_server, "truncated/disk.raw",
                                                       image))
    assert document["command_status"] == "FAILED"
    assert "short download" in document["command_error"]
    assert f"of {24 * MiB} bytes" in document["command_error"]
    assert_unbootable(disk)


def test_truncated_qcow2_download_fails(agent: RunningAgent, image_server: ImageServer,
                                        disk: Path) -> None:
    raw = image_server.root / "source.raw"
    whole_disk_image(raw, 24 * MiB)
    image = qcow2_of(raw, image_server.root / "disk.qcow2")
    document = agent.run("standby.write_image", params(
        image_server, "truncated/disk.qcow2", image, image_disk_format="qcow2"))
    assert document["command_status"] == "FAILED"
    assert "short download" in document["command_error"]
    assert_unbootable(disk)


def test_write_error_fails_with_a_clear_message(fake_api: FakeApi, image_server: ImageServer,
                                                tmp_path: Path) -> None:
    """The disk is a 64 MiB file on a 6 MiB tmpfs: writing real data runs out of space."""
    require_tools()
    small_fs = tmp_path / "tiny"
    small_fs.mkdir()
    run_tool("mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(small_fs))
    try:
        disk = make_disk(small_fs / "disk.img", 64 * MiB)
        image = image_server.root / "disk.raw"
        whole_disk_image(image, 24 * MiB, zero_fraction=0.3)
        with running_agent(fake_api, tmp_path, [disk]) as agent:
            document = agent.run("standby.write_image", params(image_server, "disk.raw", image))
        assert document["command_status"] == "FAILED"
        assert document["command_error"].startswith(f"write error on {disk} at byte")
        assert "No space left on device" in document["command_error"]
        assert head(disk) == bytes(MiB)
    finally:
        subprocess.run(["umount", str(small_fs)], check=False)


def test_image_larger_than_the_disk_fails_before_writing(agent: RunningAgent,
                                                        image_server: ImageServer,
                                                        disk: Path) -> None:
    image = image_server.root / "huge.raw"
    make_disk(image, DISK_SIZE + MiB)
    document = agent.run("standby.write_image", params(image_server, "huge.raw", image))
    assert document["command_status"] == "FAILED"
    assert "larger than the space" in document["command_error"]


def test_missing_image_fails_with_the_http_status(agent: RunningAgent,
                                                  image_server: ImageServer,
                                                  disk: Path) -> None:
    document = agent.run("standby.write_image", {
        "image_url": f"{image_server.url}/nothing.raw", "image_checksum": "0" * 64})
    assert document["command_status"] == "FAILED"
    assert "HTTP 404" in document["command_error"]


@pytest.mark.parametrize(("change", "message"), [
    ({"image_url": "ftp://example/x"}, "image_url must be an http(s) URL"),
    ({"image_os_hash_value": "abc"}, "sha256 checksum must be 64 hex digits"),
    ({"image_os_hash_algo": "crc32"}, "unsupported checksum algorithm"),
    ({"image_disk_format": "vmdk"}, "image_disk_format must be one of raw, qcow2"),
    ({"image_type": "partition"}, "partition images need root_mb"),
    ({"target_disk": "/etc/passwd"}, "is not one of this machine's disks"),
    ({"boot_mode": "efi"}, "boot_mode must be one of bios, uefi"),
    ({"swap_mb": -1}, "swap_mb must be a whole number"),
])
def test_bad_parameters_are_refused_before_anything_is_done(
        agent: RunningAgent, image_server: ImageServer, disk: Path,
        change: dict[str, object], message: str) -> None:
    image = image_server.root / "disk.raw"
    whole_disk_image(image, 4 * MiB)
    status, answer = agent.command("standby.write_image",
                                   {**params(image_server, "disk.raw", image), **change})
    assert status == 400, answer
    assert message in answer["error"]
    assert head(disk) == bytes(MiB)


def test_one_long_command_at_a_time(agent: RunningAgent, image_server: ImageServer,
                                    disk: Path) -> None:
    image = image_server.root / "disk.raw"
    data = whole_disk_image(image, 24 * MiB)
    status, first = agent.command("standby.write_image", params(image_server, "slow/disk.raw",
                                                                image))
    assert status == 200 and first["command_status"] == "RUNNING"
    status, second = agent.command("deploy.erase_devices_metadata")
    assert status == 409 and first["id"] in second["error"]
    status, short = agent.command("standby.sync")  # short commands still run
    assert status == 200 and short["command_status"] == "SUCCEEDED"
    assert agent.run_poll(first)["command_status"] == "SUCCEEDED"
    assert head(disk, len(data)) == data


# --- a real block device ------------------------------------------------------------------


def test_whole_disk_image_and_erase_on_a_loop_block_device(fake_api: FakeApi,
                                                           image_server: ImageServer,
                                                           tmp_path: Path) -> None:
    """The block-device path: size from /sys/block, zeroing by BLKZEROOUT, O_RDWR on /dev."""
    require_tools()
    backing = make_disk(tmp_path / "backing.img", 64 * MiB)
    loop = run_tool("losetup", "--find", "--show", str(backing)).strip()
    try:
        image = image_server.root / "disk.raw"
        data = whole_disk_image(image, 24 * MiB, zero_fraction=0.6)
        with running_agent(fake_api, tmp_path, [Path(loop)]) as agent:
            status, document = agent.command("inventory.get")
            assert status == 200, document
            disks = document["command_result"]["inventory"]["disks"]
            assert disks == [{"name": loop, "size": 64 * MiB, "model": None, "serial": None,
                              "rotational": disks[0]["rotational"]}]
            document = agent.run("standby.write_image", params(image_server, "disk.raw", image))
            assert document["command_status"] == "SUCCEEDED", document
            assert document["command_result"]["skipped_zero_bytes"] > 0
            with open(loop, "rb") as device:
                assert device.read(len(data)) == data
            document = agent.run("deploy.erase_devices_metadata")
            assert document["command_status"] == "SUCCEEDED", document
            with open(loop, "rb") as device:
                assert device.read(MiB) == bytes(MiB)
    finally:
        subprocess.run(["losetup", "--detach", loop], check=False)
