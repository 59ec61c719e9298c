"""The agent inside the real deploy ramdisk (QEMU, TCG): block devices and the iSCSI export.

What the host kernel cannot show (no LIO/configfs, loop devices without partition scanning) is
run here in the ramdisk `make ramdisk` builds, with the agent sources of this tree: a machine
with a virtio disk and QEMU's user-mode network, whose only peers are the test's servers on the
host's loopback (the guest reaches them at 10.0.2.2; the host reaches the agent and the iSCSI
portal through QEMU port forwards on 127.0.0.1).
- a partition image written onto a real block device (partition table re-read by the kernel,
  /dev/vdaN, mkswap, EXTLINUX installed on a mounted /dev/vda1);
- `iscsi.start_iscsi_target` (LIO via rtslib-fb) with per-deploy CHAP: the conductor's way of
  writing, `qemu-img convert -n -O raw IMAGE iscsi://user%password@host:port/iqn/0`, lands on
  the disk; a wrong CHAP password is refused; `iscsi.stop_iscsi_target` removes the export.
"""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ramdisk.build import ensure_built
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
    require_tools,
    run_tool,
    sha256_of,
    whole_disk_image,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.lab]
HOST_FROM_GUEST = "10.0.2.2"  # QEMU user-mode networking: the host's loopback
MAC = "52:54:00:e1:5c:01"
BOOT_TIMEOUT_S = 180
IQN = "iqn.2024-01.org.enclume:test-node"
CHAP_USER, CHAP_PASSWORD = "deployer", "per-deploy-Secret-42"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _guest_url(url: str) -> str:
    return url.replace("127.0.0.1", HOST_FROM_GUEST)


def test_agent_in_the_ramdisk_writes_a_block_device_and_exports_it_over_iscsi(
        fake_api: FakeApi, image_server: ImageServer, tmp_path: Path) -> None:
    require_tools()
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.fail("qemu-system-x86_64 is missing (Debian qemu-system-x86; `make deps`)")
    ramdisk = ensure_built()
    node = fake_api.add_node(MAC)
    agent_port, iscsi_port = _free_port(), _free_port()
    disk = make_disk(tmp_path / "disk.img", 256 * MiB)
    serial = tmp_path / "serial.log"
    argv = [qemu, "-accel", "tcg", "-m", "1024", "-nodefaults", "-display", "none",
            "-no-reboot", "-serial", f"file:{serial}",
            "-kernel", str(ramdisk.vmlinuz), "-initrd", str(ramdisk.initramfs),
            "-append", f"console=ttyS0 enclume.api_url={_guest_url(fake_api.url)} BOOTIF={MAC}",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{agent_port}-:9999,"
                       f"hostfwd=tcp:127.0.0.1:{iscsi_port}-:3260",
            "-device", f"virtio-net-pci,netdev=n0,mac={MAC}",
            "-drive", f"file={disk},if=virtio,format=raw,cache=writethrough"]
    machine = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            fake_api.wait_heartbeat(node, timeout=BOOT_TIMEOUT_S)
        except AssertionError:
            raise AssertionError(f"no heartbeat; console:\n{serial.read_text()[-4000:]}") from None
        agent = RunningAgent(machine, node, fake_api, f"http://127.0.0.1:{agent_port}", serial)
        _partition_image_on_a_block_device(agent, image_server, disk, tmp_path)
        _iscsi_export(agent, disk, iscsi_port, tmp_path)
    finally:
        machine.kill()
        machine.wait()


def _partition_image_on_a_block_device(agent: RunningAgent, server: ImageServer, disk: Path,
                                       tmp_path: Path) -> None:
    status, document = agent.command("inventory.get")
    assert status == 200, document
    assert [d["name"] for d in document["command_result"]["inventory"]["disks"]] == ["/dev/vda"]
    image = partition_image(server.root / "root.img")
    drive = config_drive(tmp_path, {"uuid": agent.node.uuid})
    document = agent.run("standby.write_image", {
        "image_url": _guest_url(f"{server.url}/root.img"), "image_os_hash_algo": "sha256",
        "image_os_hash_value": sha256_of(image), "image_type": "partition", "root_mb": 32,
        "swap_mb": 8, "configdrive": base64.b64encode(gzip.compress(drive)).decode()},
        timeout=120)
    assert document["command_status"] == "SUCCEEDED", (document, agent.logs()[-3000:])
    assert document["command_result"]["target_disk"] == "/dev/vda"
    table = json.loads(run_tool("sfdisk", "--json", str(disk)))["partitiontable"]
    root, swap, drive_part = table["partitions"]
    assert (root["start"], root["size"], root.get("bootable")) == (2048, 32 * 2048, True)
    with disk.open("rb") as handle:
        handle.seek(swap["start"] * 512 + 4086)
        assert handle.read(10) == b"SWAPSPACE2"
        handle.seek(drive_part["start"] * 512)
        assert handle.read(len(drive)) == drive
        handle.seek(0)
        assert handle.read(440) == Path("/usr/lib/EXTLINUX/mbr.bin").read_bytes()[:440]


def _iscsi_export(agent: RunningAgent, disk: Path, iscsi_port: int, tmp_path: Path) -> None:
    status, document = agent.command("iscsi.start_iscsi_target", {
        "iqn": IQN, "username": CHAP_USER, "password": CHAP_PASSWORD, "portal_port": 3260})
    assert status == 200 and document["command_status"] == "SUCCEEDED", document
    assert document["command_result"]["iscsi_target_iqn"] == IQN
    assert document["command_result"]["portal"].endswith(":3260")
    assert CHAP_PASSWORD not in agent.logs()
    image = tmp_path / "whole.raw"
    data = whole_disk_image(image, 48 * MiB)
    started = time.monotonic()
    target = f"iscsi://{CHAP_USER}%{{}}@127.0.0.1:{iscsi_port}/{IQN}/0"
    wrong = subprocess.run(["qemu-img", "convert", "-n", "-O", "raw", str(image),
                            target.format("wrong-password-1")], capture_output=True, text=True)
    assert wrong.returncode != 0 and "Authentication failure" in wrong.stderr
    done = subprocess.run(["qemu-img", "convert", "-n", "-O", "raw", str(image),
                           target.format(CHAP_PASSWORD)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written_s = time.monotonic() - started
    with disk.open("rb") as handle:
        assert handle.read(len(data)) == data
    status, document = agent.command("iscsi.stop_iscsi_target", {"iqn": IQN})
    assert status == 200 and document["command_result"] == {"stopped": [IQN]}, document
    gone = subprocess.run(["qemu-img", "info", target.format(CHAP_PASSWORD)],
                          capture_output=True, text=True)
    assert gone.returncode != 0
    assert written_s < 60
