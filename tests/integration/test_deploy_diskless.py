"""Fast track and the ramdisk (diskless) deploy, with the real agent, through the real API.

The deploy lab of test_deploy_agent.py (tests/support/deploy_lab.py): ``enclume-aio``, the boot
service's HTTP app, a pyghmi IPMI emulator per machine whose network boot runs the real agent
as a process on a file-backed disk. Fast track is off by default; the first node turns it on
with ``driver_info/fast_track`` (as Ironic allows), the second does not: the same provide and
deploy show the reboot between cleaning and deploy only without fast track. An agent whose
process restarts while its fast-track node rests looks the node up again and is used by the
next deploy.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from tests.support.deploy_lab import (
    KERNEL,
    RAMDISK,
    DeployLab,
    MiB,
    deploy_lab_fixtures,
    disk_head,
    put_old_os_on,
)
from tests.support.peers_fixtures import IpmiPeers
from tests.support.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]


lab, machines = deploy_lab_fixtures("deploy-diskless")


def _provision_when_unlocked(lab: DeployLab, uuid: str, target: str) -> None:
    """As Ironic's clients do: a 409 "locked" (an agent's heartbeat being recorded) is tried
    again."""
    for _ in range(50):
        response = lab.api.put(f"/v1/nodes/{uuid}/states/provision", json={"target": target})
        if response.status_code != 409 or "is locked by" not in response.text:
            break
        time.sleep(0.1)
    assert response.status_code == 202, response.text


def _power_actions(actions: list[str]) -> list[str]:
    return [a for a in actions if a.startswith("power_")]


@pytest.mark.parametrize("fast_track", [True, False], ids=["fast-track", "no-fast-track"])
def test_fast_track_keeps_the_agent_between_cleaning_and_deploy(
        machines: DeployLab, ipmi_fleet: IpmiPeers, tmp_path: Path, fast_track: bool) -> None:
    lab = machines
    machine = lab.add_machine(ipmi_fleet, tmp_path)
    if fast_track:
        patch = [{"op": "add", "path": "/driver_info/fast_track", "value": True}]
        assert lab.api.patch(f"/v1/nodes/{machine.uuid}", json=patch).status_code == 200
    put_old_os_on(machine)
    raw = lab.images["raw"].read_bytes()
    lab.set_image(machine, **lab.image_info("raw", image_download_source="http"))
    lab.make_available(machine)  # automated cleaning boots the agent
    hardware = machine.hardware
    assert hardware.agent_boots == 1
    cleaned = lab.node(machine.uuid)
    if fast_track:  # the agent stays up, and its heartbeats are taken in "available"
        assert hardware.power_state() == "on" and cleaned["power_state"] == "power on"
        assert lab.stored_internal_info(machine.uuid).get("agent_url")
        assert "heartbeat failed" not in hardware.logs()  # none refused while "available"
    else:
        assert hardware.power_state() == "off"
        lab.assert_agent_forgotten(machine)
    before_deploy = len(hardware.actions)

    _provision_when_unlocked(lab, machine.uuid, "active")
    active = lab.settled(machine, "active")
    assert active["last_error"] is None and disk_head(machine, len(raw)) == raw
    during_deploy = _power_actions(hardware.actions[before_deploy:])
    if fast_track:
        # No power action until the image was written: then off, and on into the disk.
        assert hardware.agent_boots == 1, hardware.logs()
        assert during_deploy == ["power_off", "power_on"], during_deploy
    else:
        assert hardware.agent_boots == 2
        assert len(during_deploy) > 2 and during_deploy[-2:] == ["power_off", "power_on"]
    assert hardware.boots[-1].device == "disk"
    lab.assert_agent_forgotten(machine)  # the deploy's agent is gone once the instance boots


def _untouched_marks(path: Path) -> tuple[int, int, str]:
    """What any write to the (5 GiB, sparse) disk file changes: its modification time, its
    allocated blocks, and the hash of its head (where the old OS is), without reading it all."""
    stat = path.stat()
    with path.open("rb") as disk:
        head = hashlib.sha256(disk.read(16 * MiB)).hexdigest()
    return stat.st_mtime_ns, stat.st_blocks, head


def test_ramdisk_deploy_boots_the_instance_from_the_network_and_never_writes_the_disk(
        machines: DeployLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    lab = machines
    machine = lab.add_machine(ipmi_fleet, tmp_path, deploy_interface="ramdisk")
    put_old_os_on(machine)
    lab.make_available(machine)  # cleaning still runs the agent of the deploy ramdisk
    boots_before = machine.hardware.agent_boots

    # Ironic's refusals: no kernel/ramdisk; a config drive (nothing is written to a disk).
    lab.set_image(machine, kernel=KERNEL)
    refused = lab.api.put(f"/v1/nodes/{machine.uuid}/states/provision",
                          json={"target": "active"})
    assert refused.status_code == 400
    assert "Some parameters were missing in node's instance_info. Missing are: ['ramdisk']" \
        in refused.text
    lab.set_image(machine, kernel=KERNEL, ramdisk=RAMDISK,
                  kernel_append_params="diskless=1")
    refused = lab.api.put(f"/v1/nodes/{machine.uuid}/states/provision",
                          json={"target": "active", "configdrive": {"meta_data": {}}})
    assert refused.status_code == 400 and "config drive cannot be used" in refused.text

    disk_before = _untouched_marks(machine.disk)
    lab.provision(machine, "active")
    active = lab.settled(machine, "active")
    assert active["last_error"] is None and active["power_state"] == "power on"
    boot = lab.stored_internal_info(machine.uuid)["boot"]
    assert boot["mode"] == "instance" and boot["kernel"].endswith(f"/files/{KERNEL}")
    assert boot["kernel_params"] == f"enclume.node={machine.uuid} diskless=1"
    # The machine booted from the network (persistently) and fetched the instance's files.
    assert machine.hardware.boots[-1].device == "pxe" and machine.hardware.boots[-1].persistent
    script = lab.api.get(f"{lab.boot_url}/boot.ipxe", params={"mac": machine.mac}).text
    assert f"instance kernel and ramdisk of node {machine.uuid}" in script
    eventually(lambda: machine.hardware.agent_boots == boots_before + 1)  # its own thread
    assert _untouched_marks(machine.disk) == disk_before

    lab.provision(machine, "deleted")  # tear down: back to the deploy ramdisk for cleaning
    available = lab.settled(machine, "available")
    assert available["instance_info"] == {}
    assert machine.hardware.agent_boots == boots_before + 2
    assert "boot" not in lab.stored_internal_info(machine.uuid)
    assert disk_head(machine, MiB) == bytes(MiB)


def test_fast_track_keeps_the_agent_of_inspection_for_cleaning(
        machines: DeployLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    lab = machines
    machine = lab.add_machine(ipmi_fleet, tmp_path)
    patch = [{"op": "add", "path": "/driver_info/fast_track", "value": "true"}]
    assert lab.api.patch(f"/v1/nodes/{machine.uuid}", json=patch).status_code == 200
    put_old_os_on(machine)
    lab.provision(machine, "manage")
    lab.settled(machine, "manageable")
    _provision_when_unlocked(lab, machine.uuid, "inspect")
    inspected = lab.settled(machine, "manageable")
    hardware = machine.hardware
    assert inspected["last_error"] is None and inspected["inspection_finished_at"]
    assert hardware.agent_boots == 1 and hardware.power_state() == "on"
    before_cleaning = len(hardware.actions)

    _provision_when_unlocked(lab, machine.uuid, "provide")  # automated cleaning, same agent
    lab.settled(machine, "available")
    assert hardware.agent_boots == 1, hardware.logs()
    assert _power_actions(hardware.actions[before_cleaning:]) == []
    assert hardware.power_state() == "on"
    assert disk_head(machine, MiB) == bytes(MiB)  # erase_devices_metadata ran on it


def test_an_agent_restarted_while_its_fast_track_node_rests_is_used_by_the_next_deploy(
        machines: DeployLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    lab = machines
    machine = lab.add_machine(ipmi_fleet, tmp_path)
    patch = [{"op": "add", "path": "/driver_info/fast_track", "value": True}]
    assert lab.api.patch(f"/v1/nodes/{machine.uuid}", json=patch).status_code == 200
    raw = lab.images["raw"].read_bytes()
    lab.set_image(machine, **lab.image_info("raw", image_download_source="http"))
    lab.make_available(machine)  # cleaning's agent stays up
    hardware = machine.hardware
    first_url = lab.stored_internal_info(machine.uuid)["agent_url"]

    # Its process restarts (a new port, no token): it looks the resting node up again and gets
    # a token once the old agent has been silent for the heartbeat timeout (3 s here).
    hardware.restart_agent()
    eventually(lambda: lab.stored_internal_info(machine.uuid).get("agent_url") not in (
        None, first_url), 30, "the restarted agent heartbeats")
    assert lab.node(machine.uuid)["provision_state"] == "available"
    before_deploy = len(hardware.actions)

    _provision_when_unlocked(lab, machine.uuid, "active")
    active = lab.settled(machine, "active")
    assert active["last_error"] is None and disk_head(machine, len(raw)) == raw
    assert hardware.agent_boots == 1, hardware.logs()  # no reboot: fast track used it
    assert _power_actions(hardware.actions[before_deploy:]) == ["power_off", "power_on"]
