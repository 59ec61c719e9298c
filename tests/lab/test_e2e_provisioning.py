"""Issue #7 end to end: Enclume provisions QEMU machines in the virtual lab, through its API.

One lab for the module (tests/lab/harness/provisioning.py): a vde_switch with the provisioning
VLAN 100 and the tenant VLAN 200; enclume-boot and enclume-aio in the service host namespace on
the provisioning VLAN (the `vlan` network interface drives the switch); the tenant gateway on the
tenant VLAN with its own DHCP and a listener for the test images' "booted HOSTNAME UUID"
reports; three machines with the real deploy ramdisk (`make ramdisk`) and test images
(`make testimages`), whose MACs dnsmasq alone would offer one address:

- ipmi-1: BIOS, IPMI BMC (pyghmi emulator), `direct` deploy;
- redfish-1: UEFI, Redfish BMC (sushy-emulator with the lab's QEMU driver), `iscsi` deploy;
- wol-1: BIOS, no BMC, Wake-on-LAN, network first, `direct` deploy.

The machines are written to an inventory (`baremetal create` format) and enrolled through the
API, managed and provided (automated cleaning in the ramdisk) together; then the scenarios of
the issue run in order, each through the API:

1. ipmi-1: whole-disk raw image, direct -> boots from disk on the tenant VLAN, reports to the
   tenant listener; the provisioning network hears no more DHCP from it;
2. redfish-1: whole-disk qcow2 image, iscsi (the conductor writes over iSCSI into the disk the
   agent exports with LIO), booted by OVMF from the disk;
3. + 4. wol-1: woken, deployed with a partition image and the config drive the conductor
   builds (its session service token), powered off by the agent, woken again: the booted OS
   reports the config drive's hostname and node UUID and runs the session service;
6. ipmi-1 rebuilt with a wrong image checksum -> deploy failed, the disk (which held a bootable
   OS) no longer bootable; deploying again with the right checksum succeeds;
5. ipmi-1 undeployed: cleaning wipes the disk's metadata, the port returns to the provisioning
   VLAN, the node is available;
7. issue #16: the three machines are the PCs of a room whose class VLAN (201) has its own DHCP
   and report listener; a one-off session starting minutes ahead is created through the
   classroom API (its image version fetched into the image store, the room's transfer
   multicast: one uftp session of the boot service, each PC verifying and repairing over
   HTTP), the conductor's timetable runner fires its restore, the room's event stream
   shows each PC's write progress climbing, and all three boot the test OS on the class VLAN;
   before it, wol-1, still running its OS, is powered off by a room power-off job through
   its session service (the busybox port in the test OS), and the restore wakes it;
8. issue #17, on the PCs the room left running: redfish-1 captured as version v2 of the room's
   image, ipmi-1 rebuilt with v2 by a block restore, its OS told to write files, and a delta
   restore fetching only the blocks that differ.

Every direct deploy's OS gets a config drive from the conductor (enclume-aio runs with
ENCLUME_SESSION_SERVICE_ENABLED): the test OS reports its node's name and UUID from it.

The times from deploy request to tenant OS up are printed in the "lab timings" summary
(docs/benchmarks.md has them).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
import yaml

from ramdisk.build import BuiltRamdisk
from ramdisk.testimages import BuiltTestImages
from services.images.store import ImageStore
from tests.lab.conftest import TIMINGS, RecordTiming
from tests.lab.harness import wait_until
from tests.lab.harness.classroom import EventStream, ImageDownloadThrottle
from tests.lab.harness.disk_blocks import config_drive_blocks, differing_blocks
from tests.lab.harness.progress import NodeProgress
from tests.lab.harness.provisioning import (
    PROVISIONING_DHCP_RANGE,
    PROVISIONING_VLAN,
    TENANT_VLAN,
    LabMachine,
    ProvisioningLab,
    disk_head,
    has_boot_signature,
    sha256_of,
)
from tests.lab.harness.qemu import UEFI_DISK_BOOT
from tests.lab.harness.room_page import RoomPage, percent
from tests.lab.harness.tenant import TenantNetwork
from tests.support.dnsmasq_hash import dnsmasq_seed, macs_hashed_alike

pytestmark = [pytest.mark.lab, pytest.mark.slow]

CLEAN_TIMEOUT_S = 240.0
DEPLOY_TIMEOUT_S = 240.0
REPORT_TIMEOUT_S = 120.0
MANAGE_TIMEOUT_S = 60.0
POWER_OFF_TIMEOUT_S = 60.0
MiB = 1024 * 1024
AGENT_POWER_OFF = "agent.power: running poweroff -f"
NOT_BOOTABLE = "Boot failed: not a bootable disk"  # SeaBIOS
SESSION_TOKEN_BUILT = "A config drive with a new session service token was built."
SESSION_SERVICE_UP = "enclume-session-service: INFO reporting node"  # the test OS's console
POWERED_OFF_BY_SESSION_SERVICE = ("The session service of the deployed OS fetched the power-off "
                                  "command.")
POWER_OFF_JOB_TIMEOUT_S = 90.0
DISK_BOOT_TIMEOUT_S = 60.0
# The room of scenario 7.
ROOM = "lab-room"
CLASS_VLAN = 201
CLASS_IPV4, CLASS_IPV6 = "10.89.0.1/24", "fd00:89::1/64"
ROOM_IMAGE = "lab-os"
CLASSROOM = "/enclume/v1"
SESSION_AHEAD = timedelta(minutes=5)  # its restore is due at once (the lab's lead time: 1 h)
SCHEDULED_TIMEOUT_S = 30.0
RESTORE_TIMEOUT_S = 480.0
# 2 MB/s to each machine once its ramdisk runs: the 32 MiB image takes about 17 s to write, in
# 8 MiB chunks (the agent's progress steps) of about 4 s, over four or five 4 s heartbeats, so
# the progress the conductor learns climbs step by step (at 2.5 MB/s one run saw a step missed).
IMAGE_DOWNLOAD_RATE = "16mbit"


@dataclass
class E2e:
    lab: ProvisioningLab
    progress: NodeProgress
    ipmi: LabMachine
    redfish: LabMachine
    wol: LabMachine


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory, deploy_ramdisk: BuiltRamdisk,
        test_images: BuiltTestImages) -> Iterator[E2e]:
    started = time.monotonic()
    with ProvisioningLab(tmp_path_factory.mktemp("e2e"), deploy_ramdisk, test_images) as lab:
        TIMINGS.append(("e2e", "lab up (switch, namespaces, enclume-boot, enclume-aio)",
                        time.monotonic() - started))
        # MACs dnsmasq hashes alike: booting together, they would be offered one address
        # without the address enclume-boot reserves for each.
        macs = macs_hashed_alike(3, PROVISIONING_DHCP_RANGE)
        ipmi = lab.add_machine("ipmi-1", "ipmi", deploy_interface="direct", mac=macs[0])
        redfish = lab.add_machine("redfish-1", "redfish", firmware="uefi",
                                  deploy_interface="iscsi", mac=macs[1])
        wol = lab.add_machine("wol-1", "wol", deploy_interface="direct", mac=macs[2])
        inventory = lab.write_inventory()
        assert inventory.stat().st_mode & 0o077 == 0  # it holds the BMC passwords
        nodes = lab.enroll(inventory)
        assert set(nodes) == {"ipmi-1", "redfish-1", "wol-1"}
        yield E2e(lab, NodeProgress(lab.node), ipmi, redfish, wol)


@pytest.fixture(scope="module")
def available(e2e: E2e) -> E2e:
    """Every machine managed, then provided: automated cleaning boots each into the deploy
    ramdisk (IPMI, Redfish: the BMC; Wake-on-LAN: a magic packet), the agent erases the disk
    metadata and the machine is powered off; available on the provisioning VLAN."""
    lab = e2e.lab
    names = list(lab.machines)
    for name in names:
        lab.provision(name, "manage")
    e2e.progress.wait(names, "manageable", MANAGE_TIMEOUT_S)
    asked = time.monotonic()
    for name in names:
        lab.provision(name, "provide")
    e2e.progress.wait(names, "available", CLEAN_TIMEOUT_S)
    for name in names:
        cleaned = e2e.progress.first_seen(name, "available", asked)
        assert cleaned is not None
        TIMINGS.append(("e2e", f"provide (cleaning in the ramdisk) -> available, {name}, "
                               f"3 machines at once", cleaned - asked))
    return e2e


def _wait_for_report(lab: ProvisioningLab, machine: LabMachine, since: float,
                     network: TenantNetwork | None = None) -> str:
    """The report from `machine` after `since` on the tenant listener (of `network`, default
    the tenant VLAN's); fails after a while."""
    listener = (network or lab.tenant).reports
    wait_until(lambda: lab.tenant_report(machine, since, network) is not None,
               REPORT_TIMEOUT_S, f"{machine.name} to report from the tenant network",
               interval=0.3,
               on_timeout=lambda: f"reports: {listener.reports}\n--- console (end) "
                                  f"---\n{machine.qemu.serial_text()[-3000:]}")
    report = lab.tenant_report(machine, since, network)
    assert report is not None
    return report


def _deploy(e2e: E2e, machine: LabMachine, record_timing: RecordTiming, path: str,
            **body: object) -> tuple[float, dict[str, object], str]:
    """Deploy `machine` (its instance_info set) through the API, wait for active and the
    tenant OS's report; (request time, node, report). Records the times of the path."""
    lab = e2e.lab
    asked = lab.provision(machine.name, "active", **body)
    [node] = e2e.progress.wait([machine.name], "active", DEPLOY_TIMEOUT_S).values()
    active = time.monotonic()
    report = _wait_for_report(lab, machine, asked)
    up = time.monotonic()
    waiting = e2e.progress.first_seen(machine.name, "wait call-back", asked)
    assert waiting is not None
    record_timing(f"{path}: deploy request -> wait call-back (ramdisk boot asked)",
                  waiting - asked)
    record_timing(f"{path}: wait call-back -> active (ramdisk up, image written)",
                  active - waiting)
    record_timing(f"{path}: active -> tenant OS reported", up - active)
    record_timing(f"{path}: deploy request -> tenant OS up", up - asked)
    return asked, node, report


def _assert_on_tenant_network_only(e2e: E2e, machine: LabMachine, asked: float) -> None:
    """The machine's port is in the tenant VLAN, its OS got its lease from the tenant DHCP,
    and the provisioning network heard its DHCP during the deploy (the ramdisk) but not once
    it was active."""
    lab = e2e.lab
    assert lab.switch_vlan(machine) == TENANT_VLAN
    assert lab.tenant_address_of(machine) is not None
    active = e2e.progress.first_seen(machine.name, "active", asked)
    assert active is not None
    assert lab.provisioning_dhcp.heard(machine.mac, asked), "the ramdisk's DHCP was not heard"
    assert lab.provisioning_dhcp.heard(machine.mac, active) == []


def test_machines_are_enrolled_from_the_inventory_and_provided(available: E2e) -> None:
    lab = available.lab
    inventory = yaml.safe_load((lab.workdir / "inventory.yaml").read_text())
    assert [node["driver"] for node in inventory["nodes"]] == ["ipmi", "redfish", "wol"]
    for machine in (available.ipmi, available.redfish, available.wol):
        node = lab.node(machine.name)
        assert node["provision_state"] == "available" and node["last_error"] is None
        assert node["network_interface"] == "vlan"
        assert node["deploy_interface"] == machine.deploy_interface
        for secret in ("ipmi_password", "redfish_password"):
            if secret in machine.driver_info:
                assert node["driver_info"][secret] == "******"
        states = [change.provision_state for change in available.progress.changes[machine.name]]
        assert "clean wait" in states  # cleaning waited for the agent
        history = lab.history(machine.name)
        assert "Clean step deploy.erase_devices_metadata done." in history
        assert lab.switch_vlan(machine) == PROVISIONING_VLAN
        assert not machine.qemu.running() or machine.qemu.status() == "shutdown"
    assert available.ipmi.bmc.errors == available.redfish.bmc.errors == []
    assert available.wol.wake_listener is not None
    assert [wake.powered_on for wake in available.wol.wake_listener.wakes] == [True]
    # Cleaned together with MACs dnsmasq hashes alike, each was offered only its own address.
    machines = (available.ipmi, available.redfish, available.wol)
    assert len({dnsmasq_seed(machine.mac, PROVISIONING_DHCP_RANGE) for machine in machines}) == 1
    leases = [lab.provisioning_lease_of(machine) for machine in machines]
    assert None not in leases and len(set(leases)) == 3, leases
    offers = lab.provisioning_offers()
    for machine, lease in zip(machines, leases, strict=True):
        assert {address for address, mac in offers if mac == machine.mac.lower()} == {lease}


def test_ipmi_machine_whole_disk_raw_image_direct(available: E2e,
                                                  record_timing: RecordTiming) -> None:
    lab, machine = available.lab, available.ipmi
    lab.set_image(machine.name, "disk.raw")
    boots_before = len(machine.bmc.boots)
    asked, node, report = _deploy(available, machine, record_timing, "IPMI, raw, direct")

    # The conductor's config drive (the session service token), appended to the whole disk.
    assert report == f"booted {machine.name} {machine.node_uuid}"
    assert node["power_state"] == "power on" and node["last_error"] is None
    # The BMC booted the ramdisk from the network once, then the instance from the disk.
    assert [boot.order for boot in machine.bmc.boots[boots_before:]] == ["network", "disk"]
    assert has_boot_signature(disk_head(machine, 512))
    _assert_on_tenant_network_only(available, machine, asked)
    history = lab.history(machine.name)
    assert "The agent wrote the image and verified its checksum." in history
    assert f"Switch ports moved to the tenant VLAN {TENANT_VLAN}: lab " \
           f"{machine.switch_port}." in history


def test_redfish_machine_qcow2_image_iscsi(available: E2e, record_timing: RecordTiming) -> None:
    lab, machine = available.lab, available.redfish
    lab.set_image(machine.name, "disk.qcow2")
    boots_before = len(machine.bmc.boots)
    asked, node, report = _deploy(available, machine, record_timing, "Redfish, qcow2, iscsi")

    assert report == "booted unknown unknown"  # the iscsi deploy writes no config drive
    assert node["deploy_interface"] == "iscsi" and node["last_error"] is None
    assert [boot.order for boot in machine.bmc.boots[boots_before:]] == ["network", "disk"]
    history = lab.history(machine.name)
    assert "The conductor wrote the image (qcow2, sha256 verified) over iSCSI." in history
    _assert_on_tenant_network_only(available, machine, asked)
    # A UEFI machine: OVMF booted the instance from the disk (the image's systemd-boot).
    assert UEFI_DISK_BOOT.search(machine.qemu.serial_text()), machine.qemu.serial_text()[-3000:]


def test_wake_on_lan_machine_partition_image_with_config_drive(
        available: E2e, record_timing: RecordTiming) -> None:
    lab, machine = available.lab, available.wol
    listener = machine.wake_listener
    assert listener is not None
    node_uuid = machine.node_uuid
    lab.set_image(machine.name, "partition.img")
    wakes_before = len(listener.wakes)
    power_offs_before = machine.qemu.serial_text(since_start=False).count(AGENT_POWER_OFF)
    asked, node, report = _deploy(available, machine, record_timing,
                                  "Wake-on-LAN, partition + config drive, direct")

    # The booted OS read its hostname and UUID from the config drive the conductor built
    # and the agent wrote, and started the session service it holds the settings of.
    assert report == f"booted {machine.name} {node_uuid}"
    machine.qemu.wait_for_serial(SESSION_SERVICE_UP, REPORT_TIMEOUT_S)
    # Woken into the ramdisk, powered off by the agent after the image was written, woken
    # again: it booted its disk (the network first: the tenant DHCP gave iPXE nothing to boot).
    wakes = listener.wakes[wakes_before:]
    assert [wake.powered_on for wake in wakes] == [True, True], wakes
    console = machine.qemu.serial_text(since_start=False)
    assert console.count(AGENT_POWER_OFF) == power_offs_before + 1
    assert node["power_state"] is None  # Wake-on-LAN does not know; Enclume does not guess
    history = lab.history(machine.name)
    assert any(event.startswith("Sent 1 Wake-on-LAN magic packet") for event in history)
    assert SESSION_TOKEN_BUILT in history
    _assert_on_tenant_network_only(available, machine, asked)


def _fail_deploy(e2e: E2e, machine: LabMachine, target: str, record_timing: RecordTiming,
                 what: str) -> str:
    """Ask for `target` (active or rebuild), wait for deploy failed; its last_error."""
    asked = e2e.lab.provision(machine.name, target)
    [failed] = e2e.progress.wait([machine.name], "deploy failed", DEPLOY_TIMEOUT_S).values()
    record_timing(f"{target} request -> deploy failed ({what})", time.monotonic() - asked)
    error = str(failed["last_error"])
    assert error.startswith(f"Deploy failed for node {machine.node_uuid}: "), error
    wait_until(lambda: machine.bmc.power_state() == "off", POWER_OFF_TIMEOUT_S,
               "the machine to be powered off after the failure")
    assert e2e.lab.switch_vlan(machine) == PROVISIONING_VLAN
    return error


def _assert_disk_does_not_boot(e2e: E2e, machine: LabMachine) -> None:
    """Boot the machine from its disk through the API: the firmware says it cannot."""
    lab = e2e.lab
    lab.call("PUT", f"/v1/nodes/{machine.name}/management/boot_device",
             {"boot_device": "disk", "persistent": True})
    lab.call("PUT", f"/v1/nodes/{machine.name}/states/power", {"target": "power on"})
    wait_until(lambda: machine.qemu.running(), POWER_OFF_TIMEOUT_S, "the machine to start")
    machine.qemu.wait_for_serial(NOT_BOOTABLE, DISK_BOOT_TIMEOUT_S)
    lab.call("PUT", f"/v1/nodes/{machine.name}/states/power", {"target": "power off"})
    wait_until(lambda: machine.bmc.power_state() == "off", POWER_OFF_TIMEOUT_S,
               "the machine to be powered off")


def test_wrong_checksum_fails_the_deploy_leaves_no_bootable_disk_and_a_corrected_one_works(
        available: E2e, record_timing: RecordTiming) -> None:
    """On ipmi-1, active with the test OS from the first scenario."""
    lab, machine = available.lab, available.ipmi
    assert lab.node(machine.name)["provision_state"] == "active"
    assert has_boot_signature(disk_head(machine, 512))  # the OS of the first deploy
    wrong = secrets.token_hex(32)
    actual = sha256_of(lab.images.checksum_file(lab.images.disk_raw))

    # Rebuilt, the agent downloading the image itself: it streams the whole image to the disk
    # while hashing, finds the wrong checksum at the end and wipes the disk's metadata.
    lab.set_image(machine.name, "disk.raw", image_os_hash_value=wrong,
                  image_download_source="http")
    error = _fail_deploy(available, machine, "rebuild", record_timing,
                         "wrong checksum, found by the agent")
    assert wrong in error and actual in error, error
    # The agent held the image's first MiB back until the checksum matched and wiped the
    # metadata: no MBR, no partition table. The firmware finds nothing to boot on the disk.
    assert disk_head(machine, MiB) == bytes(MiB)
    _assert_disk_does_not_boot(available, machine)

    # Deployed again through the boot service's image cache (the default): the cache verifies
    # the checksum before serving anything and the agent reports why it got nothing.
    lab.call("PATCH", f"/v1/nodes/{machine.name}", [
        {"op": "remove", "path": "/instance_info/image_download_source"}])
    error = _fail_deploy(available, machine, "active", record_timing,
                         "wrong checksum, found by the image cache")
    assert "HTTP 502" in error and f"is {actual}, expected {wrong}" in error, error
    assert not has_boot_signature(disk_head(machine, 512))

    lab.set_image(machine.name, "disk.raw")
    asked, node, report = _deploy(available, machine, record_timing,
                                  "IPMI, raw, direct, after a failed deploy")
    assert report == f"booted {machine.name} {machine.node_uuid}"
    assert node["last_error"] is None
    assert has_boot_signature(disk_head(machine, 512))
    _assert_on_tenant_network_only(available, machine, asked)


def test_undeploy_cleans_the_disk_and_returns_the_port_to_provisioning(
        available: E2e, record_timing: RecordTiming) -> None:
    lab, machine = available.lab, available.ipmi
    assert lab.node(machine.name)["provision_state"] == "active"
    assert has_boot_signature(disk_head(machine, 512))
    asked = lab.provision(machine.name, "deleted")
    [node] = available.progress.wait([machine.name], "available", CLEAN_TIMEOUT_S).values()
    record_timing("undeploy request -> available (tear down, cleaning)",
                  time.monotonic() - asked)

    states = [change.provision_state for change in available.progress.changes[machine.name]
              if change.at >= asked]
    assert "clean wait" in states, states
    assert node["instance_info"] == {} and node["last_error"] is None
    # Cleaning wiped the disk's metadata: the MBR, and the boot partition's first MiB.
    head = disk_head(machine, 2 * MiB)
    assert head == bytes(len(head))
    assert lab.switch_vlan(machine) == PROVISIONING_VLAN
    assert machine.bmc.power_state() == "off"
    # Back on the provisioning network: its DHCP heard the cleaning ramdisk.
    assert lab.provisioning_dhcp.heard(machine.mac, asked)
    # The node is deployable again: available, and validation passes.
    validation = lab.call("GET", f"/v1/nodes/{machine.name}/validate")
    assert validation["network"]["result"] is True, validation["network"]


def _scheduled_job(e2e: E2e, session: dict[str, object]) -> dict[str, object]:
    """The restore job the timetable runner made for the session's first occurrence."""
    lab = e2e.lab
    [occurrence] = lab.call("GET", f"{CLASSROOM}/occurrences?session={session['uuid']}")[
        "occurrences"][:1]
    found: dict[str, object] = {}

    def made() -> bool:
        jobs = lab.call("GET", f"{CLASSROOM}/jobs?room={ROOM}")["jobs"]
        found.update(next((job for job in jobs if job["occurrence"] == occurrence["uuid"]), {}))
        return bool(found)

    wait_until(made, SCHEDULED_TIMEOUT_S, "the timetable runner to fire the session's restore",
               interval=0.5, on_timeout=lambda: str(lab.call(
                   "GET", f"{CLASSROOM}/occurrences?session={session['uuid']}")))
    return found


def _assert_the_room_page_followed_the_restore(lab: ProvisioningLab, page: RoomPage,
                                              job: dict[str, object]) -> dict[str, list[str]]:
    """Issue #19 in the lab: the room's page, never reloaded, showed each PC restoring with
    its percentage climbing (at least one between 0 and 100) and ends with each one active on
    the image, as the JSON API says. Each PC's card states, as the page showed them."""
    room = lab.call("GET", f"{CLASSROOM}/rooms/{ROOM}")
    api = {pc["name"]: pc for pc in room["pcs"]}
    outcomes = {pc["node"]: pc["outcome"] for pc in cast(list[dict[str, str]], job["pcs"])}
    assert outcomes == dict.fromkeys(page.pcs, "succeeded"), job
    assert {name: pc["provision_state"] for name, pc in api.items()} == dict.fromkeys(
        page.pcs, "active"), api
    shown = page.wait_for(dict.fromkeys(page.pcs, f"active on {job['image']}"), 30.0)
    assert shown == dict.fromkeys(page.pcs, f"active on {ROOM_IMAGE}:v1")
    seen = page.seen()
    for name in page.pcs:
        percents = [p for p in map(percent, seen.get(name, [])) if p is not None]
        assert percents == sorted(percents) and any(0 < p < 100 for p in percents), (name, seen)
    assert page.same_document(), "the room's page was loaded again"
    return seen


def _power_off_through_the_session_service(e2e: E2e) -> None:
    """A room power-off job of the running wol-1: its OS's session service powers it off."""
    lab, machine = e2e.lab, e2e.wol
    assert machine.bmc.power_state() == "on"
    job = lab.call("POST", f"{CLASSROOM}/rooms/{ROOM}/actions",
                   {"action": "power-off", "pcs": [machine.name]})
    final: dict[str, object] = {}

    def ended() -> bool:
        final.update(lab.call("GET", f"{CLASSROOM}/jobs/{job['uuid']}"))
        return final["state"] in ("done", "failed-partly", "failed")

    wait_until(ended, POWER_OFF_JOB_TIMEOUT_S, "the power-off job of wol-1", interval=0.5,
               on_timeout=lambda: f"job: {final}")
    [pc] = final["pcs"]  # type: ignore[misc]
    assert final["state"] == "done" and pc["step"] == "power off", final
    assert lab.history(machine.name).count(POWERED_OFF_BY_SESSION_SERVICE) == 1
    wait_until(lambda: machine.bmc.power_state() == "off", POWER_OFF_TIMEOUT_S,
               "wol-1 to power itself off")
    assert "running power-off: poweroff -f" in machine.qemu.serial_text(since_start=False)


def test_a_scheduled_session_restores_the_room_onto_its_class_vlan(
        available: E2e, record_timing: RecordTiming) -> None:
    """Issue #16 in the lab: IPMI, Redfish and Wake-on-LAN PCs restored by a session."""
    lab = available.lab
    machines = (available.ipmi, available.redfish, available.wol)
    names = [machine.name for machine in machines]
    class_network = lab.add_tenant_network("class", CLASS_VLAN, CLASS_IPV4, CLASS_IPV6)
    source = lab.boot.file_url("images/disk.raw")
    # The whole-disk test image boots BIOS and UEFI machines alike; a version has one boot mode
    # and UEFI is the one the Redfish machine's firmware accepts (the others ignore it).
    # The version is fetched into the image store: the room restores it by multicast (one
    # uftp stream from the boot service to the three PCs, each repairing over HTTP).
    lab.call("POST", f"{CLASSROOM}/images", {"name": ROOM_IMAGE})
    lab.call("POST", f"{CLASSROOM}/images/{ROOM_IMAGE}/versions", {
        "version": "v1", "source": source, "image_type": "whole-disk", "disk_format": "raw",
        "checksum": sha256_of(lab.images.checksum_file(lab.images.disk_raw)),
        "boot_mode": "uefi", "fetch": True})
    wait_until(lambda: lab.call("GET", f"{CLASSROOM}/images/{ROOM_IMAGE}")["versions"][0][
        "state"] == "available", 120, "the room's image version to be fetched into the store")
    lab.call("POST", f"{CLASSROOM}/rooms", {
        "name": ROOM, "time_zone": "UTC", "idle_vlan": PROVISIONING_VLAN,
        "class_vlan": CLASS_VLAN, "allowed_images": [ROOM_IMAGE], "pcs": names,
        "transfer": "multicast"})
    # The agent writes the image (and reports its progress) on every PC: the iscsi deploy of
    # scenario 2 has the conductor write it.
    lab.call("PATCH", f"/v1/nodes/{available.redfish.name}", [
        {"op": "replace", "path": "/deploy_interface", "value": "direct"}])
    # The Wake-on-LAN PC still runs the OS of scenario 4, with its session service: a room
    # power-off job switches it off through that service (no BMC, no agent); the restore wakes
    # it. (A reboot to the network through it would be lost: the restore moves the PC's port to
    # the idle VLAN first, cutting the service's connection before the command reaches it.)
    _power_off_through_the_session_service(available)

    # The teacher's page of the room, open from before the session until the restore's end.
    with EventStream(lab.api_url, ROOM) as stream, RoomPage(lab.api_url, ROOM, names) as page:
        throttle = ImageDownloadThrottle(lab, machines, IMAGE_DOWNLOAD_RATE)
        try:
            start = datetime.now(UTC).replace(second=0, microsecond=0) + SESSION_AHEAD
            session = lab.call("POST", f"{CLASSROOM}/sessions", {
                "room": ROOM, "image": f"{ROOM_IMAGE}:v1", "name": "lab class",
                "start": start.strftime("%Y-%m-%dT%H:%M"),
                "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")})
            asked = time.monotonic()
            job = _scheduled_job(available, session)
            fired = time.monotonic()
            final: dict[str, object] = {}

            def finished() -> bool:
                throttle.poll()
                available.progress.poll(names)
                page.poll()
                final.update(lab.call("GET", f"{CLASSROOM}/jobs/{job['uuid']}"))
                return final["state"] in ("done", "failed-partly")

            wait_until(finished, RESTORE_TIMEOUT_S, "the room's restore to end", interval=0.5,
                       on_timeout=lambda: f"job: {final}")
            ended = time.monotonic()
        finally:
            throttle.close()
        reports = {machine.name: _wait_for_report(lab, machine, asked, class_network)
                   for machine in machines}
        up = time.monotonic()
        shown = _assert_the_room_page_followed_the_restore(lab, page, final)
    record_timing(f"room of 3 PCs: chromium started, the room's page loaded; its cards showed "
                  f"{shown}", page.opened_in_s)
    record_timing("room of 3 PCs: session created -> restore fired by the timetable runner",
                  fired - asked)
    record_timing("room of 3 PCs: session created -> job done (all PCs active)", ended - asked)
    record_timing("room of 3 PCs: session created -> 3 OS up on the class VLAN", up - asked)

    assert stream.error is None, stream.error
    assert final["state"] == "done", final
    assert str(final["requested_by"]).startswith("timetable"), final
    assert final["kind"] == "restore" and final["image"] == f"{ROOM_IMAGE}:v1", final
    # every PC was restored by the room's multicast session (and verified, repaired over HTTP)
    assert {pc["restore_mode"] for pc in final["pcs"]} == {"multicast"}, final  # type: ignore
    assert set(throttle.throttled) == set(names)  # every PC booted the deploy ramdisk
    # The event stream showed each PC's image write climbing, step by step, to 100.
    percents = stream.percents(str(job["uuid"]))
    for name in names:
        values = percents.get(name, [])
        active = available.progress.first_seen(name, "active", asked)
        assert active is not None, name
        record_timing(f"room of 3 PCs: {name}, its ramdisk's kernel up -> active; percentages "
                      f"seen: {values}", active - throttle.throttled[name])
        assert values == sorted(values) and values[-1] == 100, (name, values)
        assert len([value for value in values if 0 < value < 100]) >= 2, (name, values)
    assert any(kind == "job" and data.get("uuid") == job["uuid"] and data["state"] == "done"
               for _, kind, data in stream.events)

    for machine in machines:
        node = lab.node(machine.name)
        assert node["provision_state"] == "active" and node["last_error"] is None, node
        assert node["instance_info"]["image_source"] == source
        # The OS booted on the room's class VLAN, not on the node's own tenant VLAN (200).
        assert reports[machine.name] == f"booted {machine.name} {machine.node_uuid}"
        assert lab.switch_vlan(machine) == CLASS_VLAN
        assert lab.tenant_report(machine, asked) is None
        active = available.progress.first_seen(machine.name, "active", asked)
        assert active is not None
        assert lab.provisioning_dhcp.heard(machine.mac, asked), "the ramdisk's DHCP not heard"
        assert lab.provisioning_dhcp.heard(machine.mac, active) == []
        assert (f"Switch ports moved to the tenant VLAN {CLASS_VLAN} (the class VLAN of room "
                f"{ROOM}): lab {machine.switch_port}.") in lab.history(machine.name)


def _rebuild(e2e: E2e, machine: LabMachine, record_timing: RecordTiming, path: str,
             network: TenantNetwork) -> tuple[float, str]:
    lab = e2e.lab
    asked = lab.provision(machine.name, "rebuild")
    e2e.progress.wait([machine.name], "active", DEPLOY_TIMEOUT_S)
    assert e2e.progress.first_seen(machine.name, "wait call-back", asked) is not None
    report = _wait_for_report(lab, machine, asked, network)
    record_timing(f"{path}: rebuild request -> tenant OS up", time.monotonic() - asked)
    return asked, report


def test_a_captured_pc_is_deployed_used_and_restored_by_delta(
        available: E2e, record_timing: RecordTiming, tmp_path: Path) -> None:
    """Issue #17 in the lab, on the PCs the room restore left running: redfish-1 (its disk as
    the room's session left it, with its config drive) is captured as version v2 of the room's
    image; ipmi-1 is rebuilt with v2 by a block restore and boots it; its OS writes files;
    a delta restore fetches only the blocks they changed and the disk is v2's again."""
    lab, reference, target = available.lab, available.redfish, available.ipmi
    started = time.monotonic()
    # Capture needs a manageable PC: tear down without cleaning (the disk is what to capture).
    lab.call("PATCH", f"/v1/nodes/{reference.name}", [
        {"op": "replace", "path": "/automated_clean", "value": False}])
    lab.provision(reference.name, "deleted")
    available.progress.wait([reference.name], "available", CLEAN_TIMEOUT_S)
    lab.provision(reference.name, "manage")
    available.progress.wait([reference.name], "manageable", MANAGE_TIMEOUT_S)
    asked = time.monotonic()
    lab.call("POST", f"{CLASSROOM}/images/{ROOM_IMAGE}/capture",
             {"node": reference.name, "version": "v2"})
    available.progress.wait([reference.name], "manageable", CLEAN_TIMEOUT_S)
    record_timing("capture of redfish-1 (ramdisk boot, 2 GiB disk read) -> version v2",
                  time.monotonic() - asked)
    [version] = [v for v in lab.call("GET", f"{CLASSROOM}/images/{ROOM_IMAGE}")["versions"]
                 if v["version"] == "v2"]
    assert version["state"] == "available" and version["image_type"] == "whole-disk", version
    manifest = ImageStore(lab.image_store_dir, 1 << 40).manifest(version["uuid"])
    assert manifest.image_sha256 == version["checksum"]
    assert differing_blocks(reference, manifest, tmp_path) == []

    # Deployed to another PC by a block restore (full); its own config drive goes over the
    # captured one's partition. It boots the captured OS and writes files when asked to.
    lab.call("PATCH", f"/v1/nodes/{target.name}", [
        {"op": "add", "path": "/instance_info", "value": {"image_source": version["uuid"]}}])
    # A PC of the room: its OS comes up on the room's class VLAN, as in the room's restore.
    network = lab.tenant_networks[CLASS_VLAN]
    network.reports.answers[f"booted {target.name} {target.node_uuid}"] = "write-files"
    console = len(target.qemu.serial_text(since_start=False))
    _, report = _rebuild(available, target, record_timing, "captured v2 to ipmi-1, full",
                         network)
    assert report == f"booted {target.name} {target.node_uuid}"  # its own config drive
    written = target.qemu.wait_for_serial("wrote files on /dev/vda1", REPORT_TIMEOUT_S)
    assert written, target.qemu.serial_text(since_start=False)[console:]
    full = lab.node(target.name)["driver_internal_info"]["image_written"]
    assert (full["version"], full["mode"]) == (version["uuid"], "full"), full
    drive = config_drive_blocks(target, manifest)
    used = set(differing_blocks(target, manifest, tmp_path))
    assert used - drive, "the OS wrote nothing outside the config drive"

    # A delta restore takes the OS's changes back, fetching only the blocks that differ.
    lab.call("PATCH", f"/v1/nodes/{target.name}", [
        {"op": "add", "path": "/instance_info/image_restore", "value": "delta"}])
    _rebuild(available, target, record_timing, "ipmi-1 back to v2, delta", network)
    delta = lab.node(target.name)["driver_internal_info"]["image_written"]
    assert (delta["mode"], delta["fell_back_to_full"]) == ("delta", False), delta
    assert 1 <= delta["differing_blocks"] <= len(used), (delta, sorted(used))
    assert delta["fetched_bytes"] <= len(used) * manifest.block_size, delta
    assert delta["fetched_bytes"] * 100 <= manifest.size, (delta, manifest.size)
    assert set(differing_blocks(target, manifest, tmp_path)) <= drive
    history = lab.history(target.name)
    assert any(event.startswith(f"The agent restored image version {version['uuid']} (delta, ")
               for event in history), history[-5:]
    record_timing(f"issue #17 scenario (capture, full, files, delta); delta fetched "
                  f"{delta['fetched_bytes']} bytes ({manifest.data_bytes} data bytes in the "
                  f"{manifest.size}-byte disk)",
                  time.monotonic() - started)


def test_the_lab_leaves_no_namespace_behind(tmp_path: Path, deploy_ramdisk: BuiltRamdisk,
                                            test_images: BuiltTestImages) -> None:
    """A lab that fails while being built removes what it made (here: a machine kind that
    does not exist, after the services started)."""
    import subprocess

    from tests.lab.harness.processes import LabError

    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                check=True).stdout.split())
    with pytest.raises(LabError, match="unknown machine kind"), \
            ProvisioningLab(tmp_path / "lab", deploy_ramdisk, test_images) as lab:
        lab.add_machine("odd-1", "ilo")  # type: ignore[arg-type]
    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                               check=True).stdout.split())
    # Only this process's namespaces (their names carry its PID): the switch tests of
    # tests/integration make enclab- namespaces too, maybe at this moment on another worker.
    mine = f"enclab-.*-{os.getpid()}-"
    assert {name for name in after - before if re.match(mine, name)} == set()
