"""Issue #8 in the virtual lab: an unknown machine discovered, an enrolled one inspected by the
`enclume` CLI.

One lab for the module (tests/lab/harness/provisioning.py) with discovery on in enclume-boot
and enclume-aio and a rules file; the deploy ramdisk of `make ramdisk`:

(a) a QEMU machine no port knows PXE-boots on the provisioning VLAN: the boot service gives its
    MAC the ramdisk with `enclume.discovery=1`, the agent posts its inventory, the API enrolls
    it (its real MAC, CPUs, memory, disk, the rule's driver, name and labels) and the machine
    powers itself off. Discovery time (power on -> node enrolled) is in the "lab timings".
(b) `enclume --url URL node inspect NODE --wait` on an enrolled, manageable IPMI node: the
    conductor boots the ramdisk through the virtual BMC, asks the agent for its inventory and
    replaces the wrong properties the node was enrolled with by the machine's real ones.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ramdisk.build import BuiltRamdisk
from ramdisk.testimages import BuiltTestImages
from tests.lab.conftest import TIMINGS, RecordTiming
from tests.lab.harness import wait_until
from tests.lab.harness.provisioning import PROVISIONING_VLAN, ProvisioningLab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ENCLUME = Path(sys.executable).parent / "enclume"
GiB = 1024**3
STRANGER_MEMORY_MIB = 1024
STRANGER_DISK_GIB = 3
DISCOVERY_TIMEOUT_S = 180.0
POWER_OFF_TIMEOUT_S = 60.0
MANAGE_TIMEOUT_S = 60.0
INSPECT_TIMEOUT_S = 240.0
RULES = """
rules:
  - name: every machine
    set:
      labels: {site: lab}
  - name: lab PCs
    match:
      mac_prefix: "52:54:00"
      memory_mb: {min: 512}
      cpu_arch: x86_64
    set:
      driver: wol
      driver_info: {wol_host: "10.87.255.255"}
      labels: {room: lab-1}
      name: "pc-{mac_hex}"
  - name: servers
    match: {has_bmc: true}
    set: {driver: ipmi}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, deploy_ramdisk: BuiltRamdisk,
        test_images: BuiltTestImages) -> Iterator[ProvisioningLab]:
    started = time.monotonic()
    with ProvisioningLab(tmp_path_factory.mktemp("discovery"), deploy_ramdisk, test_images,
                         discovery_rules=RULES) as lab:
        TIMINGS.append(("discovery", "lab up (switch, namespaces, enclume-boot, enclume-aio)",
                        time.monotonic() - started))
        yield lab


def _node_with_port(lab: ProvisioningLab, mac: str) -> dict[str, Any] | None:
    ports = lab.call("GET", f"/v1/ports/detail?address={mac}")["ports"]
    return lab.node(ports[0]["node_uuid"]) if ports else None


def test_an_unknown_machine_pxe_boots_enrolls_itself_and_powers_off(
        lab: ProvisioningLab, record_timing: RecordTiming) -> None:
    machine = lab.lab.machine("stranger", lab.switch, vlan=PROVISIONING_VLAN, firmware="bios",
                              memory_mib=STRANGER_MEMORY_MIB,
                              disk_size=f"{STRANGER_DISK_GIB}G", boot_device="network")
    assert _node_with_port(lab, machine.mac) is None
    machine.start()
    found: dict[str, Any] = {}

    def enrolled() -> bool:
        found.update(_node_with_port(lab, machine.mac) or {})
        return bool(found)

    wait_until(enrolled, DISCOVERY_TIMEOUT_S, "the unknown machine to be enrolled",
               interval=0.2, on_timeout=lambda: machine.serial_text()[-4000:])
    record_timing("discovery: power on -> node enrolled (BIOS, iPXE, deploy ramdisk)",
                  machine.seconds_since_start())
    machine.wait_for_status("shutdown", POWER_OFF_TIMEOUT_S)
    record_timing("discovery: power on -> machine powered itself off",
                  machine.seconds_since_start())

    node = lab.node(found["uuid"])
    assert node["provision_state"] == "enroll" and node["last_error"] is None
    assert node["driver"] == "wol" and node["name"] == f"pc-{machine.mac.replace(':', '')}"
    assert node["driver_info"] == {"wol_host": "10.87.255.255"}
    assert node["extra"] == {"labels": {"site": "lab", "room": "lab-1"}}
    properties = node["properties"]
    assert properties["cpus"] == 1 and properties["cpu_arch"] == "x86_64"
    assert 0.8 * STRANGER_MEMORY_MIB <= properties["memory_mb"] <= STRANGER_MEMORY_MIB
    assert properties["local_gb"] == STRANGER_DISK_GIB - 1
    ports = lab.call("GET", f"/v1/nodes/{node['uuid']}/ports/detail")["ports"]
    assert [(port["address"], port["pxe_enabled"]) for port in ports] == [(machine.mac, True)]
    inventory = lab.call("GET", f"/v1/nodes/{node['uuid']}/inventory")["inventory"]
    assert {disk["name"]: disk["size"] for disk in inventory["disks"]} == {
        "/dev/vda": STRANGER_DISK_GIB * GiB}
    assert inventory["boot"] == {"current_boot_mode": "bios", "pxe_interface": machine.mac}
    assert inventory["system_vendor"]["manufacturer"] == "QEMU"
    assert any(event.startswith("Discovered: enrolled") for event in lab.history(node["uuid"]))

    console = machine.serial_text()
    assert "enclume.discovery=1" in console and f"BOOTIF={machine.mac}" in console
    assert f"this machine is enrolled as node {node['uuid']} (enroll)" in console
    assert "agent.power: running poweroff -f" in console
    # Known now: the boot service answers its MAC no more (nothing is planned for it).
    script = lab.boot.get(f"/boot.ipxe?mac={machine.mac}")
    assert script is not None and "kernel " not in script


def test_enclume_node_inspect_wait_updates_a_node_from_its_real_inventory(
        lab: ProvisioningLab, record_timing: RecordTiming) -> None:
    machine = lab.add_machine("ipmi-1", "ipmi")
    lab.enroll(lab.write_inventory())
    lab.call("PATCH", "/v1/nodes/ipmi-1", [{"op": "replace", "path": "/properties", "value": {
        "capabilities": "boot_mode:bios", "cpus": 64, "memory_mb": 1, "cpu_arch": "ppc64le"}}])
    lab.provision("ipmi-1", "manage")
    wait_until(lambda: lab.node("ipmi-1")["provision_state"] == "manageable",
               MANAGE_TIMEOUT_S, "ipmi-1 to be manageable", interval=0.3)

    started = time.monotonic()
    done = subprocess.run([str(ENCLUME), "--url", lab.api_url, "node", "inspect", "ipmi-1",
                           "--wait", "--timeout", str(INSPECT_TIMEOUT_S)],
                          capture_output=True, text=True, timeout=INSPECT_TIMEOUT_S + 30,
                          check=False)
    record_timing("enclume node inspect --wait (IPMI, BIOS, deploy ramdisk)",
                  time.monotonic() - started)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "manageable" in done.stdout

    node = lab.node("ipmi-1")
    assert node["provision_state"] == "manageable" and node["last_error"] is None
    assert node["inspection_finished_at"] is not None
    properties = node["properties"]
    assert properties["cpus"] == 1 and properties["cpu_arch"] == "x86_64"
    assert 0.8 * machine.qemu.memory_mib <= properties["memory_mb"] <= machine.qemu.memory_mib
    assert properties["local_gb"] == 1  # the 2 GiB disk, less 1 GiB
    assert properties["capabilities"] == "boot_mode:bios"  # kept
    inventory = lab.call("GET", "/v1/nodes/ipmi-1/inventory")["inventory"]
    assert machine.mac in {i["mac_address"] for i in inventory["interfaces"]}
    assert machine.bmc.boots and machine.bmc.boots[-1].order == "network"
    wait_until(lambda: machine.qemu.status() in ("off", "shutdown"), POWER_OFF_TIMEOUT_S,
               "ipmi-1 to be powered off after inspection", interval=0.3)
    assert machine.bmc.errors == []
