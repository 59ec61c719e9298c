"""Capture of a reference PC end to end: the real ``enclume`` CLI asks the real API
(enclume-aio), the conductor boots the machine (IPMI emulator, tests/support/agent_machine.py)
into the ramdisk as a cleaning, the real agent sends its file-backed disk to the boot service's
capture routes, and the version appears in the catalogue; a capture that fails keeps nothing and
leaves the node in ``clean failed``; a captured version is deployed to another PC. The lab of
tests/integration/test_deploy_restore_blocks.py: the API, the conductor and the boot service on
one image store.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.images.store import ImageStore
from tests.integration.test_agent_harness import partition_image
from tests.integration.test_deploy_restore_blocks import (  # noqa: F401 (the lab's fixtures)
    IMAGE_SIZE,
    StoreLab,
    available_machine,
    lab,
    ok,
    store_lab,
)
from tests.support.deploy_lab import DeployLab, Machine, MiB, bootable, disk_head
from tests.support.peers_fixtures import IpmiPeers

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ENCLUME = Path(sys.executable).parent / "enclume"
DISK = 24 * MiB
PREFIX = "/enclume/v1"
E = PREFIX
REFERENCE_DISK = IMAGE_SIZE + 4 * MiB
EXT4_UUID_OFFSET = 1024 + 104  # the superblock's s_uuid


def reference_pc(pc_lab: DeployLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> Machine:
    """A manageable machine whose (small) disk holds an image with an MBR, zeros after it."""
    machine = pc_lab.add_machine(ipmi_fleet, tmp_path, automated_clean=False)
    raw = pc_lab.images["raw"].read_bytes()
    with machine.disk.open("r+b") as disk:
        disk.truncate(DISK)
        disk.write(raw)
    pc_lab.provision(machine, "manage")
    pc_lab.settled(machine, "manageable")
    return machine


def store_of(pc_lab: DeployLab) -> ImageStore:
    base = pc_lab.images["raw"].parent.parent  # the boot service's data dir
    return ImageStore(base / "image-store", max_bytes=1 << 40)


def enclume(pc_lab: DeployLab, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ENCLUME), "--url", str(pc_lab.api.base_url), *argv],
                          capture_output=True, text=True, timeout=120)


def test_capture_with_the_cli_then_a_failed_capture_keeps_nothing(
        lab: StoreLab,  # noqa: F811
        ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    pc_lab = lab.lab
    machine = reference_pc(pc_lab, ipmi_fleet, tmp_path)
    created = pc_lab.api.post(f"{PREFIX}/images", json={"name": "reference"})
    assert created.status_code == 201, created.text
    disk = machine.disk.read_bytes()

    run = enclume(pc_lab, "image", "capture", machine.uuid, "--image", "reference",
                  "--version", "v1", "--wait", "-f", "json")
    assert run.returncode == 0, (run.stdout, run.stderr, machine.hardware.logs())
    version = json.loads(run.stdout)
    assert version["checksum"] == hashlib.sha256(disk).hexdigest()
    assert (version["store"]["size"], version["state"], version["disk_format"],
            version["image_type"]) == (DISK, "available", "raw", "whole-disk")
    assert version["boot_mode"] == "bios"  # the node's capabilities
    listed = pc_lab.api.get(f"{PREFIX}/images/reference").json()["versions"]
    assert [v["uuid"] for v in listed] == [version["uuid"]]
    store = store_of(pc_lab)
    assert b"".join(store.read_range(version["uuid"], 0, DISK)) == disk
    before = set(store.versions()) - {version["uuid"]}
    node = pc_lab.settled(machine, "manageable")
    assert node["last_error"] is None and node["clean_step"] == {}
    assert machine.hardware.power_state() == "off"
    pc_lab.assert_agent_forgotten(machine)
    assert "clean_steps" not in pc_lab.stored_internal_info(machine.uuid)

    taken = pc_lab.api.post(f"{PREFIX}/images/reference/capture",
                         json={"node": machine.uuid, "version": "v1"})
    assert taken.status_code == 409, taken.text

    # The version's name is taken while the PC is being captured: nothing is kept.
    started = pc_lab.api.post(f"{PREFIX}/images/reference/capture",
                           json={"node": machine.uuid, "version": "v2"})
    assert started.status_code == 202, started.text
    clash = pc_lab.api.post(f"{PREFIX}/images/reference/versions", json={
        "version": "v2", "source": "other.raw", "checksum": "0" * 64})
    assert clash.status_code == 201, clash.text
    failed = pc_lab.settled(machine, "clean failed")
    error = failed["last_error"] or ""
    assert error.startswith(f"Cleaning failed for node {machine.uuid}:"), error
    assert "deploy.capture_image" in error and "version v2 meanwhile" in error, error
    assert set(store.versions()) == before | {version["uuid"]}
    assert machine.hardware.power_state() == "off"
    pc_lab.assert_agent_forgotten(machine)

    # Back to manageable, a capture under another name works (every block already stored).
    pc_lab.provision(machine, "manage")
    pc_lab.settled(machine, "manageable")
    run = enclume(pc_lab, "image", "capture", machine.uuid, "--image",
                  "reference", "--version", "v3", "--wait", "-f", "json")
    assert run.returncode == 0, (run.stdout, run.stderr)
    assert json.loads(run.stdout)["checksum"] == version["checksum"]
    assert len(store.versions()) == len(before) + 2


def test_an_agent_killed_mid_capture_keeps_nothing_and_the_next_capture_resumes(
        lab: StoreLab,  # noqa: F811
        ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    pc_lab = lab.lab
    machine = reference_pc(pc_lab, ipmi_fleet, tmp_path)
    with machine.disk.open("r+b") as disk:  # 48 MiB of data: 12 blocks to send
        disk.truncate(64 * MiB)
        disk.write(os.urandom(48 * MiB))
    data = machine.disk.read_bytes()
    pc_lab.api.post(f"{PREFIX}/images", json={"name": "killed"})
    store = store_of(pc_lab)
    before = set(store.versions())
    started = pc_lab.api.post(f"{PREFIX}/images/killed/capture",
                              json={"node": machine.uuid, "version": "v1"})
    assert started.status_code == 202, started.text
    staged_dir = store.layout.tmp / f"capture-{started.json()['session']}" / "blocks"
    deadline = time.monotonic() + 60
    while not (staged_dir.is_dir() and len(os.listdir(staged_dir)) >= 2):
        assert time.monotonic() < deadline, machine.hardware.logs()
        time.sleep(0.005)
    agent = machine.hardware.agent
    assert agent is not None
    agent.kill()  # the PC loses power in the middle of the capture
    agent.wait()
    assert set(store.versions()) == before
    assert pc_lab.node(machine.uuid)["provision_state"] == "clean wait"
    abort(pc_lab, machine)  # or the callback timeout, later
    failed = pc_lab.settled(machine, "clean failed")
    assert "aborted" in (failed["last_error"] or "")
    assert set(store.versions()) == before

    pc_lab.provision(machine, "manage")
    pc_lab.settled(machine, "manageable")
    # what the boot service received whole (and kept: the session outlives the failure)
    staged = len([name for name in os.listdir(staged_dir) if not name.startswith(".")])
    assert 0 < staged < 12
    run = enclume(pc_lab, "image", "capture", machine.uuid, "--image", "killed", "--version",
                  "v1", "--wait", "-f", "json")
    assert run.returncode == 0, (run.stdout, run.stderr, machine.hardware.logs())
    version = json.loads(run.stdout)
    assert version["checksum"] == hashlib.sha256(data).hexdigest()
    sent = re.findall(r"captured \S+: (\d+) blocks sent of (\d+)", machine.hardware.logs())
    # a block still in flight at the kill may have been kept after the count: at most the rest
    assert sent[-1][1] == "16" and int(sent[-1][0]) <= 12 - staged, (sent, staged)
    assert b"".join(store.read_range(version["uuid"], 0, len(data))) == data


def abort(pc_lab: DeployLab, machine: Machine) -> None:
    """Abort the clean wait, again while a heartbeat holds the node's lock (409)."""
    deadline = time.monotonic() + 30
    while True:
        answer = pc_lab.api.put(f"/v1/nodes/{machine.uuid}/states/provision",
                                json={"target": "abort"})
        if answer.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert answer.status_code == 202, answer.text


def test_capture_is_refused_for_a_node_that_is_not_manageable(
        lab: StoreLab,  # noqa: F811
        ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    pc_lab = lab.lab
    machine = pc_lab.add_machine(ipmi_fleet, tmp_path, automated_clean=False)
    pc_lab.api.post(f"{PREFIX}/images", json={"name": "refused"})
    run = enclume(pc_lab, "image", "capture", machine.uuid, "--image", "refused")
    assert run.returncode != 0 and "enroll" in run.stderr, (run.stdout, run.stderr)
    assert machine.hardware.agent_boots == 0
    ironic = pc_lab.api.put(f"/v1/nodes/{machine.uuid}/states/provision", json={
        "target": "clean", "capture_step": {"step": "capture_image"}})
    assert ironic.status_code == 400, ironic.text


def test_a_captured_pc_is_deployed_to_another_pc_byte_identical(
        lab: StoreLab,  # noqa: F811
        ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    deploy = lab.lab
    reference = deploy.add_machine(ipmi_fleet, tmp_path, automated_clean=False)
    with reference.disk.open("r+b") as disk, lab.image.open("rb") as image:
        disk.truncate(REFERENCE_DISK)
        shutil.copyfileobj(image, disk)
        disk.seek(70 * MiB + 4321)  # what the teacher installed on top of the debian version
        disk.write(b"a package the class needs" * 4096)
    captured = reference.disk.read_bytes()
    deploy.provision(reference, "manage")
    deploy.settled(reference, "manageable")
    ok(deploy.api.post(f"{E}/images", json={"name": "captured"}), 201)
    ok(deploy.api.post(f"{E}/images/captured/capture",
                       json={"node": reference.uuid, "version": "v1"}), 202)
    deploy.settled(reference, "manageable")
    version = ok(deploy.api.get(f"{E}/images/captured"))["versions"][0]
    assert version["checksum"] == hashlib.sha256(captured).hexdigest()
    assert version["store"]["size"] == REFERENCE_DISK and version["state"] == "available"
    # The store had the debian version's blocks: only the one the teacher changed was sent.
    sent = re.findall(r"captured \S+: (\d+) blocks sent", reference.hardware.logs())
    assert sent == ["1"], sent

    target = available_machine(lab, ipmi_fleet, tmp_path)
    deploy.set_image(target, image_source=version["uuid"])
    deploy.provision(target, "active")
    active = deploy.settled(target, "active")
    assert active["last_error"] is None
    assert disk_head(target, REFERENCE_DISK) == captured and bootable(target)


def test_a_partition_capture_with_the_cli_makes_a_partition_version(
        lab: StoreLab,  # noqa: F811
        ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    pc_lab = lab.lab
    machine = reference_pc(pc_lab, ipmi_fleet, tmp_path)
    machine.disk.write_bytes(machine.disk.read_bytes()[:DISK])
    subprocess.run(["sfdisk", "--quiet", str(machine.disk)], check=True, text=True,
                   input="label: dos\nsize=8MiB, type=83\nsize=12MiB, type=83\n")
    # The largest Linux partition, the root: a file system with a kernel in /boot.
    root = partition_image(tmp_path / "root.img", 12 * MiB)
    with machine.disk.open("r+b") as disk:
        disk.seek(9 * MiB)
        disk.write(root.read_bytes())
    partition = machine.disk.read_bytes()[9 * MiB:21 * MiB]
    ok(pc_lab.api.post(f"{E}/images", json={"name": "root-only"}), 201)
    refused = pc_lab.api.post(f"{E}/images/root-only/capture", json={
        "node": machine.uuid, "image_type": "partition"})
    assert refused.status_code == 400 and "needs a kernel" in refused.text, refused.text

    run = enclume(pc_lab, "image", "capture", machine.uuid, "--image", "root-only",
                  "--version", "p1", "--partition",
                  "--kernel", "vmlinuz", "--ramdisk", "initrd.img", "--wait", "-f", "json")
    assert run.returncode == 0, (run.stdout, run.stderr, machine.hardware.logs())
    version = json.loads(run.stdout)
    assert (version["image_type"], version["kernel"], version["ramdisk"]) == (
        "partition", "vmlinuz", "initrd.img")
    assert version["checksum"] == hashlib.sha256(partition).hexdigest()
    assert version["store"]["size"] == len(partition)
    store = store_of(pc_lab)
    assert b"".join(store.read_range(version["uuid"], 0, len(partition))) == partition

    # Deployed to another PC: the agent's partition-image write reads the store's disk with
    # the image token the conductor gave it, checks the version's sha256, lays out the disk.
    target = available_machine(lab, ipmi_fleet, tmp_path)
    pc_lab.set_image(target, image_source=version["uuid"], image_type="partition",
                     kernel="vmlinuz", ramdisk="initrd.img", root_mb=16)
    pc_lab.provision(target, "active")
    active = pc_lab.settled(target, "active")
    assert active["last_error"] is None, active["last_error"]
    assert pc_lab.stored_internal_info(target.uuid)["image_written"] == {
        "version": version["uuid"], "method": "write_image", "image_size": len(partition)}
    table = json.loads(subprocess.run(["sfdisk", "--json", str(target.disk)], check=True,
                                      capture_output=True, text=True).stdout)
    first = table["partitiontable"]["partitions"][0]
    assert first["size"] * 512 == 16 * MiB and first.get("bootable"), table
    with target.disk.open("rb") as disk:  # the captured file system (its ext4 UUID)
        disk.seek(first["start"] * 512 + EXT4_UUID_OFFSET)
        assert disk.read(16) == partition[EXT4_UUID_OFFSET:EXT4_UUID_OFFSET + 16]
    assert bootable(target)

    # Delta needs a whole disk: refused before the PC is touched.
    again = available_machine(lab, ipmi_fleet, tmp_path)
    pc_lab.set_image(again, image_source=version["uuid"], image_type="partition",
                     kernel="vmlinuz", ramdisk="initrd.img", root_mb=16, image_restore="delta")
    answer = pc_lab.api.put(f"/v1/nodes/{again.uuid}/states/provision",
                            json={"target": "active"})
    assert answer.status_code == 400, answer.text
    assert "cannot be restored by delta: a partition image" in answer.text, answer.text
    assert again.hardware.agent_boots == 0
