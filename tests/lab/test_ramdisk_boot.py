"""Issue #6: a QEMU machine PXE-boots the real deploy ramdisk and its agent calls back.

A vde_switch; a namespace "service host" running `enclume-boot` (DHCP, TFTP, HTTP) and
`enclume-aio` (API + conductor) on one SQLite database; the deploy kernel and ramdisk of
`make ramdisk` in the boot service's files. A fake-hardware node (fake power: the test powers
the machine on itself) with the `ipxe` boot and `agent` inspect interfaces is inspected: the
conductor prepares the ramdisk boot and waits; the machine (BIOS or UEFI, iPXE ROM) boots the
ramdisk, whose /init brings up the boot NIC with DHCP and starts the agent; the agent looks
itself up with the NIC's MAC, heartbeats with its callback URL, and the conductor asks its
command API for `inventory.get` with the token of the lookup and stores what it reports.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from ramdisk.build import BuiltRamdisk
from services.common.db import Database, upgrade_schema
from services.common.models import Node, Port
from tests.lab.conftest import RecordTiming
from tests.lab.harness import DirectKernel, Lab, NetnsHost, QemuMachine, require_tool, wait_until
from tests.lab.harness.agent_api import RecordingAgentApi
from tests.lab.harness.aio import EnclumeAio, start_enclume_aio
from tests.lab.harness.boot_service import start_boot_service

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SERVER_IPV4 = "10.79.0.1/24"
SERVER_IPV6 = "fd00:79::1/64"
AGENT_PORT = 9999
BOOT_TIMEOUT_S = 240.0
STATE_TIMEOUT_S = 60.0
DISK_SIZE = "3G"
DISK_BYTES = 3 * 1024**3
MEMORY_MIB = 1024
IMAGE_BYTES = 32 * 1024**2
# The ramdisk's /init and udhcpc script say which address the boot NIC got.
LEASE_LINE = re.compile(r"enclume-ramdisk: (\S+) has (\d+\.\d+\.\d+\.\d+)/")
# Console lines that mark the stages of the boot, timed from QEMU's start.
MILESTONES = {
    "kernel started": "Linux version",
    "/init started": "enclume-ramdisk [",
    "agent started": "starting the agent",
}


class Milestones:
    """When each milestone first appeared on the console (polled with the test's waits)."""

    def __init__(self, machine: QemuMachine) -> None:
        self.machine = machine
        self.seen: dict[str, float] = {}

    def poll(self) -> None:
        console = self.machine.serial_text()
        for name, marker in MILESTONES.items():
            if name not in self.seen and marker in console:
                self.seen[name] = self.machine.seconds_since_start()


def _access_log_requests(aio: EnclumeAio, method: str, path_prefix: str) -> list[str]:
    """Request targets of `method` requests on paths starting with `path_prefix` that the
    API answered with 2xx, in order (uvicorn's access log)."""
    pattern = re.compile(rf'"{method} ({re.escape(path_prefix)}\S*) HTTP/1\.[01]" (\d{{3}})')
    return [match.group(1) for match in pattern.finditer(aio.log_text())
            if match.group(2).startswith("2")]


def _enroll(aio: EnclumeAio, mac: str, boot_mode: str) -> str:
    node = aio.call("POST", "/v1/nodes", {
        "driver": "fake-hardware", "name": f"lab-{mac.replace(':', '')}",
        "boot_interface": "ipxe", "inspect_interface": "agent",
        "properties": {"capabilities": f"boot_mode:{boot_mode}"},
        "driver_info": {"deploy_kernel": "deploy/vmlinuz",
                        "deploy_ramdisk": "deploy/initramfs.zst",
                        "kernel_append_params": "console=ttyS0"}})
    aio.call("POST", "/v1/ports", {"node_uuid": node["uuid"], "address": mac,
                                   "pxe_enabled": True})
    return str(node["uuid"])


def _provision(aio: EnclumeAio, uuid: str, target: str) -> None:
    aio.call("PUT", f"/v1/nodes/{uuid}/states/provision", {"target": target})


def _agent_address(machine: QemuMachine) -> str:
    for interface, address in LEASE_LINE.findall(machine.serial_text()):
        if interface != "lo":
            return address
    raise AssertionError("the ramdisk never said which address its NIC got:\n"
                         + machine.serial_text()[-3000:])


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_machine_pxe_boots_the_deploy_ramdisk_and_its_agent_reports_inventory(
        lab: Lab, deploy_ramdisk: BuiltRamdisk, tmp_path: Path, firmware: str,
        record_timing: RecordTiming) -> None:
    database_url = f"sqlite:///{tmp_path / 'enclume.sqlite'}"
    switch = lab.switch()
    server = lab.host("service", switch, SERVER_IPV4, SERVER_IPV6)
    boot = start_boot_service(server, tmp_path / "boot", database_url)
    deploy_dir = boot.files_dir / "deploy"
    deploy_dir.mkdir()
    shutil.copyfile(deploy_ramdisk.vmlinuz, deploy_dir / "vmlinuz")
    shutil.copyfile(deploy_ramdisk.initramfs, deploy_dir / "initramfs.zst")
    aio = start_enclume_aio(server, tmp_path / "aio", database_url, boot,
                            {"ENCLUME_AGENT_HEARTBEAT_TIMEOUT_S": "15"})

    machine = lab.machine("node", switch, firmware=firmware, memory_mib=MEMORY_MIB,
                          disk_size=DISK_SIZE)
    uuid = _enroll(aio, machine.mac, firmware)
    _provision(aio, uuid, "manage")
    aio.wait_for_provision_state(uuid, "manageable", STATE_TIMEOUT_S)
    _provision(aio, uuid, "inspect")
    waiting = aio.wait_for_provision_state(uuid, "inspect wait", STATE_TIMEOUT_S,
                                           failed=("inspect failed",))
    desired = waiting["driver_internal_info"]["boot"]
    assert desired["mode"] == "ramdisk" and desired["boot_mode"] == firmware
    assert f"enclume.node={uuid}" in desired["kernel_params"]
    assert "agent_secret_token" not in waiting["driver_internal_info"]  # none issued yet

    machine.start()
    milestones = Milestones(machine)
    heartbeat_path = f"/v1/heartbeat/{uuid}"

    def heartbeat_seen() -> bool:
        milestones.poll()
        return bool(_access_log_requests(aio, "POST", heartbeat_path))

    wait_until(heartbeat_seen, BOOT_TIMEOUT_S, "the agent's first heartbeat", interval=0.2,
               on_timeout=lambda: f"--- console (end) ---\n{machine.serial_text()[-4000:]}")
    first_heartbeat = machine.seconds_since_start()
    for name, seconds in milestones.seen.items():
        record_timing(f"QEMU start -> {name}, {firmware} ipxe, deploy ramdisk", seconds)
    record_timing(f"QEMU start -> first agent heartbeat, {firmware} ipxe, deploy ramdisk",
                  first_heartbeat)
    inspected = aio.wait_for_provision_state(uuid, "manageable", STATE_TIMEOUT_S,
                                             failed=("inspect failed",))
    record_timing(f"QEMU start -> inspection stored (inventory.get), {firmware}, deploy ramdisk",
                  machine.seconds_since_start())

    # The boot: iPXE loaded this node's ramdisk with its parameters; /init started the agent.
    console = machine.serial_text()
    assert f"enclume.node={uuid}" in console and f"BOOTIF={machine.mac}" in console
    assert "enclume-ramdisk" in console and "starting the agent" in console
    assert f"this is node {uuid}" in console  # the agent's log: its lookup found the node

    # The agent looked itself up with the machine's MAC (and the node from the command line).
    lookups = [urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
               for target in _access_log_requests(aio, "GET", "/v1/lookup")]
    assert lookups, "no successful lookup in the API's access log"
    assert machine.mac in lookups[0]["addresses"][0].split(",")

    # The conductor reached the agent's command API with the lookup's token and stored what
    # inventory.get reported: this machine's NIC, disk, memory and firmware.
    assert inspected["last_error"] is None
    status, stored = aio.request("GET", f"/v1/nodes/{uuid}/inventory")
    assert status == 200, stored
    inventory: dict[str, Any] = stored["inventory"]
    macs = {interface["mac_address"] for interface in inventory["interfaces"]}
    assert machine.mac in macs
    disks = {disk["name"]: disk for disk in inventory["disks"]}
    assert disks["/dev/vda"]["size"] == DISK_BYTES
    assert inventory["boot"]["current_boot_mode"] == firmware
    assert inventory["cpu"]["count"] == 1 and inventory["cpu"]["architecture"] == "x86_64"
    assert 0.8 * MEMORY_MIB * 1024**2 < inventory["memory"]["total_bytes"] <= MEMORY_MIB * 1024**2
    assert inspected["properties"]["cpus"] == 1
    assert "agent_secret_token" not in inspected["driver_internal_info"]  # cleared at the end

    # The command API refuses anyone without the token, on the address DHCP gave the NIC.
    commands_url = f"http://{_agent_address(machine)}:{AGENT_PORT}/v1/commands/"
    request = {"name": "inventory.get", "params": {}}
    status, _ = server.http_request("POST", commands_url, request)
    assert status == 401
    status, _ = server.http_request("POST", commands_url, request,
                                    {"X-Agent-Token": "not-the-token"})
    assert status == 403


def _enroll_in_database(database_url: str, mac: str, boot: dict[str, str]) -> str:
    """A node with one PXE port `mac` and a desired boot, written as the conductor's boot
    interface leaves it (the boot service then answers the MAC's DHCP requests)."""
    upgrade_schema(database_url)
    with Database(database_url).session() as session:
        node = Node(driver="fake-hardware", name=f"lab-{mac.replace(':', '')}",
                    driver_internal_info={"boot": boot})
        session.add(node)
        session.flush()
        session.add(Port(address=mac, node_id=node.id, pxe_enabled=True))
        return str(node.uuid)


def _command(server: NetnsHost, callback_url: str, token: str, name: str,
             params: dict[str, Any]) -> dict[str, Any]:
    status, document = server.http_request("POST", f"{callback_url}/v1/commands/",
                                           {"name": name, "params": params},
                                           {"X-Agent-Token": token}, timeout_s=60)
    assert status == 200, document
    assert document["command_status"] == "SUCCEEDED", document
    result: dict[str, Any] = document["command_result"]
    return result


def test_the_ramdisk_agent_exports_the_machine_disk_over_iscsi(
        lab: Lab, deploy_ramdisk: BuiltRamdisk, tmp_path: Path,
        record_timing: RecordTiming) -> None:
    """The LIO target in the ramdisk, driven through the agent's command API as the conductor's
    iscsi deploy does: an image written with `qemu-img convert` over iSCSI (CHAP) from the
    service host lands on the machine's disk. The agent looks up at a recording stand-in for
    the API, so that the test knows the one-time token (the real API never shows it)."""
    require_tool("qemu-img")
    database_url = f"sqlite:///{tmp_path / 'enclume.sqlite'}"
    switch = lab.switch()
    server = lab.host("service", switch, "10.80.0.1/24", "fd00:80::1/64")
    machine = lab.machine("node", switch, firmware="bios", memory_mib=MEMORY_MIB,
                          disk_size=DISK_SIZE)
    boot = start_boot_service(server, tmp_path / "boot", database_url)
    uuid = _enroll_in_database(database_url, machine.mac, {
        "mode": "ramdisk", "kernel": boot.file_url("deploy/vmlinuz"),
        "ramdisk": boot.file_url("deploy/initramfs.zst"), "kernel_params": "",
        "boot_mode": "bios"})
    token = secrets.token_urlsafe(32)
    api = RecordingAgentApi(server, tmp_path / "agent-api", 6385, uuid, [machine.mac], token)
    machine.direct_kernel = DirectKernel(
        deploy_ramdisk.vmlinuz, deploy_ramdisk.initramfs,
        f"console=ttyS0 enclume.api_url={api.url} enclume.node={uuid} BOOTIF={machine.mac}")

    machine.start()
    wait_until(lambda: api.first_accepted_heartbeat() is not None, BOOT_TIMEOUT_S,
               "the agent's first heartbeat", interval=0.2,
               on_timeout=lambda: f"--- console (end) ---\n{machine.serial_text()[-4000:]}")
    record_timing("QEMU start (direct kernel) -> first agent heartbeat, deploy ramdisk",
                  machine.seconds_since_start())
    [lookup, *_] = [call for call in api.calls("lookup") if call["addresses"]]
    assert lookup["addresses"][0] == machine.mac and lookup["node_uuid"] == uuid
    heartbeat = api.first_accepted_heartbeat()
    assert heartbeat is not None and heartbeat["agent_version"]
    callback_url = heartbeat["callback_url"]
    address = _agent_address(machine)
    assert callback_url == f"http://{address}:{AGENT_PORT}"

    inventory = _command(server, callback_url, token, "inventory.get", {})["inventory"]
    assert machine.mac in {interface["mac_address"] for interface in inventory["interfaces"]}

    iqn = f"iqn.2026-11.org.enclume:{uuid}"
    user, password = "enclume", secrets.token_hex(8)
    exported = _command(server, callback_url, token, "iscsi.start_iscsi_target", {
        "iqn": iqn, "username": user, "password": password, "portal_port": 3260,
        "target_disk": "/dev/vda"})
    assert exported == {"iscsi_target_iqn": iqn, "portal": f"{address}:3260"}

    image = tmp_path / "image.raw"
    image.write_bytes(secrets.token_bytes(IMAGE_BYTES))
    portal = f"iscsi://{user}%{{}}@{address}:3260/{iqn}/0"
    refused = server.execute(["qemu-img", "info", portal.format("wrong-password")], check=False)
    assert refused.returncode != 0 and "Authentication failure" in refused.stderr
    started = time.monotonic()
    server.execute(["qemu-img", "convert", "-n", "-O", "raw", str(image),
                    portal.format(password)], timeout=120)
    record_timing(f"{IMAGE_BYTES >> 20} MiB written over iSCSI into the ramdisk's LIO target",
                  time.monotonic() - started)
    _command(server, callback_url, token, "iscsi.stop_iscsi_target", {"iqn": iqn})
    _command(server, callback_url, token, "standby.sync", {})

    machine.power_off()
    compared = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(image),
                               str(machine.disk)], capture_output=True, text=True, check=False)
    assert compared.returncode == 0, compared.stdout + compared.stderr
