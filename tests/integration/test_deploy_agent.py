"""Deploy, clean and inspect with the real agent, end to end, through the real API.

The pieces, all real processes or real servers on loopback:
- ``enclume-aio`` (API + conductor, SQLite);
- the boot service's HTTP app on the same database (deploy kernel/ramdisk files, iPXE scripts,
  the image cache at /images/<node>), in a thread;
- a BMC of the pyghmi IPMI emulator per node (driver ``ipmi``: the conductor powers the machine
  and sets its boot device over RMCP+);
- behind it a machine that plays its own boot (tests/support/agent_machine.py): a network boot
  fetches the node's iPXE script, kernel and ramdisk from the boot service and runs the real
  agent with that kernel command line on a file-backed disk; power off stops the agent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.deploy_lab import (
    DISK_BYTES,
    DeployLab,
    GiB,
    Machine,
    MiB,
    bootable,
    deploy_lab_fixtures,
    disk_head,
    put_old_os_on,
)
from tests.support.peers_fixtures import IpmiPeers

pytestmark = [pytest.mark.integration, pytest.mark.slow]


lab, machines = deploy_lab_fixtures("deploy-agent")


def new_machine(lab: DeployLab, ipmi_fleet: IpmiPeers, tmp_path: Path, **fields: object
                ) -> Machine:
    return lab.add_machine(ipmi_fleet, tmp_path, **fields)


def test_provide_deploy_raw_undeploy_deploy_qcow2(machines: DeployLab, ipmi_fleet: IpmiPeers,
                                                  tmp_path: Path) -> None:
    lab = machines
    machine = new_machine(lab, ipmi_fleet, tmp_path)
    put_old_os_on(machine)
    lab.make_available(machine)  # automated cleaning boots the agent and erases metadata
    assert machine.hardware.agent_boots == 1 and not bootable(machine)
    assert disk_head(machine, MiB) == bytes(MiB)
    assert machine.hardware.power_state() == "off"
    lab.assert_agent_forgotten(machine)

    raw = lab.images["raw"].read_bytes()
    lab.set_image(machine, **lab.image_info("raw", image_download_source="http"))
    lab.provision(machine, "active")
    active = lab.settled(machine, "active")
    assert active["last_error"] is None and active["power_state"] == "power on"
    assert disk_head(machine, len(raw)) == raw
    assert machine.hardware.agent_boots == 2
    assert machine.hardware.boots[-1].device == "disk" and machine.hardware.disk_boots >= 1
    assert machine.hardware.power_state() == "on"
    assert active["deploy_step"] == {}
    lab.assert_agent_forgotten(machine)

    lab.provision(machine, "deleted")  # tear down, then automated cleaning
    available = lab.settled(machine, "available")
    assert available["instance_info"] == {} and not bootable(machine)
    assert machine.hardware.agent_boots == 3

    # qcow2, through the boot service's image cache (the default download source)
    lab.set_image(machine, **lab.image_info("qcow2"))
    lab.provision(machine, "active")
    lab.settled(machine, "active")
    assert disk_head(machine, len(raw)) == raw


def test_a_wrong_checksum_fails_clearly_leaves_no_bootable_disk_and_deploy_again_works(
        machines: DeployLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    lab = machines
    machine = new_machine(lab, ipmi_fleet, tmp_path, automated_clean=False)
    lab.make_available(machine)
    put_old_os_on(machine)
    wrong = lab.image_info("raw", image_download_source="http", image_os_hash_value="0" * 64)
    lab.set_image(machine, **wrong)
    lab.provision(machine, "active")
    failed = lab.settled(machine, "deploy failed")
    error = failed["last_error"] or ""
    assert error.startswith(f"Deploy failed for node {machine.uuid}:"), error
    assert "checksum mismatch" in error
    assert not bootable(machine) and disk_head(machine, MiB) == bytes(MiB)
    assert machine.hardware.power_state() == "off"
    lab.assert_agent_forgotten(machine)

    # Through the boot service's cache the image never reaches the disk at all.
    lab.set_image(machine, **{**wrong, "image_download_source": "local"})
    lab.provision(machine, "active")
    refused = lab.settled(machine, "deploy failed")
    assert "HTTP 502" in (refused["last_error"] or ""), refused["last_error"]
    assert not bootable(machine)

    raw = lab.images["raw"].read_bytes()
    lab.set_image(machine, **lab.image_info("raw"))
    lab.provision(machine, "active")
    active = lab.settled(machine, "active")
    assert active["last_error"] is None
    assert disk_head(machine, len(raw)) == raw and bootable(machine)


def test_inspection_then_manual_cleaning(machines: DeployLab, ipmi_fleet: IpmiPeers,
                                         tmp_path: Path) -> None:
    lab = machines
    machine = new_machine(lab, ipmi_fleet, tmp_path, automated_clean=False)
    lab.provision(machine, "manage")
    lab.settled(machine, "manageable")
    assert lab.api.get(f"/v1/nodes/{machine.uuid}/inventory").status_code == 404
    lab.provision(machine, "inspect")
    inspected = lab.settled(machine, "manageable")
    assert inspected["last_error"] is None
    assert inspected["inspection_finished_at"] is not None
    assert machine.hardware.power_state() == "off"
    lab.assert_agent_forgotten(machine)

    found = lab.api.get(f"/v1/nodes/{machine.uuid}/inventory")
    assert found.status_code == 200, found.text
    inventory = found.json()["inventory"]
    assert found.json()["plugin_data"] == {}
    properties = inspected["properties"]
    assert properties["cpus"] == inventory["cpu"]["count"] == os.cpu_count()
    assert properties["cpu_arch"] == inventory["cpu"]["architecture"]
    assert properties["memory_mb"] > 0
    assert properties["local_gb"] == DISK_BYTES // GiB - 1
    assert properties["capabilities"] == "boot_mode:bios"  # kept
    assert [d["size"] for d in inventory["disks"]] == [DISK_BYTES]
    inventory_macs = {i["mac_address"] for i in inventory["interfaces"]
                      if i.get("mac_address") and i["mac_address"] != "00:00:00:00:00:00"}
    ports = lab.api.get(f"/v1/nodes/{machine.uuid}/ports/detail").json()["ports"]
    addresses = {p["address"]: p["pxe_enabled"] for p in ports}
    assert addresses[machine.mac] is True
    for mac in inventory_macs:
        assert addresses.get(mac) is False, (mac, addresses)

    # Manual cleaning: a step the agent does not have fails before anything boots ...
    boots = machine.hardware.agent_boots
    lab.provision(machine, "clean", clean_steps=[{"interface": "raid", "step": "create"}])
    failed = lab.settled(machine, "clean failed")
    assert "deploy.erase_devices_metadata" in (failed["last_error"] or "")
    assert machine.hardware.agent_boots == boots
    lab.provision(machine, "manage")
    lab.settled(machine, "manageable")
    # ... and one it has runs in the ramdisk.
    put_old_os_on(machine)
    lab.provision(machine, "clean", clean_steps=[
        {"interface": "deploy", "step": "erase_devices_metadata"}])
    cleaned = lab.settled(machine, "manageable")
    assert cleaned["last_error"] is None and cleaned["clean_step"] == {}
    assert not bootable(machine) and machine.hardware.agent_boots == boots + 1
    lab.assert_agent_forgotten(machine)


def test_inspection_rules_run_on_the_agents_inventory_in_the_real_flow(
        machines: DeployLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    """Inspection rules (API 1.96; written to the database: Enclume does not serve their API
    before it speaks 1.96) applied by a real inspection; a ``fail`` rule fails the next one."""
    from sqlalchemy import delete

    from services.common.rule_models import InspectionRule

    lab = machines
    machine = new_machine(lab, ipmi_fleet, tmp_path, automated_clean=False)
    lab.provision(machine, "manage")
    lab.settled(machine, "manageable")
    with lab.db.session() as session:
        session.add(InspectionRule(priority=10, conditions=[
            {"op": "eq", "args": {"values": ["{inventory[cpu][count]}", str(os.cpu_count())]}}],
            actions=[{"op": "add-trait", "args": {"name": "CUSTOM_INSPECTED"}},
                     {"op": "set-attribute", "args": {
                         "path": "extra/first_disk", "value": "{inventory[disks][0][name]}"}},
                     {"op": "set-plugin-data", "args": {"path": "rule.ran", "value": True}}]))
    try:
        lab.provision(machine, "inspect")
        inspected = lab.settled(machine, "manageable")
        found = lab.api.get(f"/v1/nodes/{machine.uuid}/inventory").json()
        assert inspected["traits"] == ["CUSTOM_INSPECTED"]
        assert inspected["extra"]["first_disk"] == found["inventory"]["disks"][0]["name"]
        assert found["plugin_data"] == {"rule": {"ran": True}}
        with lab.db.session() as session:
            session.add(InspectionRule(priority=20, actions=[
                {"op": "fail", "args": {"msg": "not this machine"}}]))
        lab.provision(machine, "inspect")
        failed = lab.settled(machine, "inspect failed")
        assert "Failed to inspect hardware. Reason: not this machine" in failed["last_error"]
    finally:
        with lab.db.session() as session:
            session.execute(delete(InspectionRule))


def test_user_deploy_steps_run_on_the_agent_between_the_core_steps(
        machines: DeployLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    lab = machines
    machine = new_machine(lab, ipmi_fleet, tmp_path, automated_clean=False)
    lab.make_available(machine)
    raw = lab.images["raw"].read_bytes()
    lab.set_image(machine, **lab.image_info("raw", image_download_source="http"))
    erase = {"interface": "deploy", "step": "erase_devices_metadata", "priority": 90,
             "args": {}}
    lab.provision(machine, "active", deploy_steps=[erase])
    active = lab.settled(machine, "active")
    assert active["last_error"] is None and disk_head(machine, len(raw)) == raw
    events = [e["event"] for e in lab.api.get(
        f"/v1/nodes/{machine.uuid}/history?detail=true").json()["history"]]
    done = [e for e in events if e.startswith("Deploy step")]
    assert done == ["Deploy step deploy.deploy done.",
                    "Deploy step deploy.erase_devices_metadata done.",
                    "Deploy step deploy.write_image done."], events

    lab.provision(machine, "deleted")
    lab.settled(machine, "available")
    lab.set_image(machine, **lab.image_info("raw", image_download_source="http"))
    wrong = {**erase, "args": {"disks": ["/dev/no-such-disk"]}}
    lab.provision(machine, "active", deploy_steps=[wrong])
    failed = lab.settled(machine, "deploy failed")
    error = failed["last_error"] or ""
    assert error.startswith(f"Deploy failed for node {machine.uuid}: deploy step "
                            "deploy.erase_devices_metadata failed: "), error
    assert "/dev/no-such-disk" in error
    assert failed["deploy_step"] == {} or failed["deploy_step"]["step"] == "erase_devices_metadata"
    lab.assert_agent_forgotten(machine)


def test_a_node_with_disable_power_off_is_reset_where_others_are_powered_off(
        machines: DeployLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    """API 1.95 in the flows, as Ironic (conductor/utils.py node_power_action, agent_base's
    tear_down and clean_up, deploy_utils.tear_down_inband_cleaning, the inspector's
    tear_down_managed_boot, boot_instance, IPMIPower.reboot): inspection, cleaning, deploy and
    tear down never power the machine off; where they would, the BMC resets it, out of the
    ramdisk (or the instance) once its boot is removed."""
    lab = machines
    machine = new_machine(lab, ipmi_fleet, tmp_path, disable_power_off=True)
    hardware = machine.hardware
    put_old_os_on(machine)
    lab.provision(machine, "manage")
    lab.settled(machine, "manageable")

    lab.provision(machine, "inspect")
    assert lab.settled(machine, "manageable")["inspection_finished_at"] is not None
    # The ramdisk booted from off, then a reset out of it: no agent runs, nothing network-booted.
    assert hardware.power_state() == "on" and hardware.agent is None
    assert hardware.boots[-1].device != "pxe" and hardware.agent_boots == 1
    lab.assert_agent_forgotten(machine)

    lab.provision(machine, "provide")  # automated cleaning
    available = lab.settled(machine, "available")
    assert available["power_state"] == "power on" and available["last_error"] is None
    assert not bootable(machine) and hardware.agent_boots == 2
    assert hardware.power_state() == "on" and hardware.agent is None
    assert hardware.boots[-1].device != "pxe"

    raw = lab.images["raw"].read_bytes()
    lab.set_image(machine, **lab.image_info("raw", image_download_source="http"))
    lab.provision(machine, "active")
    active = lab.settled(machine, "active")
    assert active["last_error"] is None and active["power_state"] == "power on"
    assert disk_head(machine, len(raw)) == raw and hardware.agent_boots == 3
    assert hardware.boots[-1].device == "disk" and hardware.agent is None
    lab.assert_agent_forgotten(machine)
    # Before the reset into the instance the deploy's agent was locked down (Ironic's
    # tear_down_agent); inspection's and cleaning's were not.
    locked = [n for n in (1, 2, 3) if "command system.lockdown" in
              (hardware.workdir / f"agent-{n}.log").read_text()]
    assert locked == [3], hardware.logs()

    lab.provision(machine, "deleted")  # tear down (a reset out of the instance), cleaning
    lab.settled(machine, "available")
    assert not bootable(machine) and hardware.agent_boots == 4 and hardware.agent is None
    power = [a for a in hardware.actions if a.startswith("power")]
    # on for inspection; resets: out of inspection, into and out of cleaning, into and out of
    # the deploy, out of the instance, into and out of cleaning.
    # The tear down's two resets in a row (out of the instance, then into cleaning's ramdisk)
    # are Ironic's: _do_node_tear_down runs AgentBaseMixin.clean_up, which reboots a
    # disable_power_off node "so that it no longer runs the instance image", then automated
    # cleaning's prepare_inband_cleaning reboots it into the ramdisk.
    assert power == ["power_on"] + ["power_reset"] * 8, power

    # Without automated cleaning (automated_clean False) the tear down resets it once, out of
    # the instance: Ironic's clean_up alone.
    patch = [{"op": "replace", "path": "/automated_clean", "value": False}]
    assert lab.api.patch(f"/v1/nodes/{machine.uuid}", json=patch).status_code == 200
    lab.set_image(machine, **lab.image_info("raw", image_download_source="http"))
    lab.provision(machine, "active")
    assert lab.settled(machine, "active")["last_error"] is None
    deployed = len([a for a in hardware.actions if a.startswith("power")])
    lab.provision(machine, "deleted")
    lab.settled(machine, "available")
    power = [a for a in hardware.actions if a.startswith("power")]
    assert power[deployed:] == ["power_reset"], power
    assert hardware.agent_boots == 5 and hardware.boots[-1].device != "pxe"
