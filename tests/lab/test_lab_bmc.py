"""Issue #7: virtual BMCs of the lab's QEMU machines, driven by the real Enclume drivers through
enclume-aio's API.

A vde_switch; a namespace "service host" running `enclume-boot` and `enclume-aio` on one SQLite
database, as in the deploy tests; the BMCs listen on 127.0.0.1 of that namespace, where the
conductor reaches them (tests/lab/harness/bmcs.py). Machines: a BIOS machine whose disk holds the
whole-disk test image (disk first in its own boot order) behind an IPMI BMC (pyghmi emulator) and
another behind a Redfish BMC (sushy-emulator with the lab's QEMU systems driver); a network-first
UEFI machine (OVMF, its variables kept in its directory) without BMC woken by a Wake-on-LAN
listener on the switch. PXE boots go to the test kernel
(its marker carries a nonce of this test), disk boots to the test image.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import websocket

from ramdisk.testimages import MARKER as IMAGE_MARKER
from ramdisk.testimages import BuiltTestImages
from ramdisk.testkernel import MARKER as KERNEL_MARKER
from ramdisk.testkernel import BuiltTestKernel
from services.common.db import Database, upgrade_schema
from services.common.models import Node
from tests.lab.conftest import RecordTiming
from tests.lab.harness import Lab, wait_until
from tests.lab.harness.aio import EnclumeAio, start_enclume_aio
from tests.lab.harness.bmc import QemuBackedMachine
from tests.lab.harness.bmcs import VirtualBmcs
from tests.lab.harness.boot_service import BootService, start_boot_service
from tests.lab.harness.netns import NetnsHost
from tests.lab.harness.nsenter import in_netns
from tests.support.aio import free_port
from tests.support.ipmi_bmc import BootSetting
from tests.support.sol_bmc import EMULATION, IPMI_SIM, USER, lan_conf
from tests.support.tcp_forward import TcpForwarder

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SERVER_IPV4 = "10.83.0.1/24"
SERVER_IPV6 = "fd00:83::1/64"
WOL_HOST_IPV4 = "10.83.0.250/24"
BOOT_TIMEOUT_S = 150.0
POWER_TIMEOUT_S = 60.0
PICKUP_TIMEOUT_S = 30.0
BMC_USER = "admin"


class Service:
    """The service host of a test: boot service, API + conductor, their database."""

    def __init__(self, lab: Lab, tmp_path: Path, test_kernel: BuiltTestKernel) -> None:
        database_url = f"sqlite:///{tmp_path / 'enclume.sqlite'}"
        upgrade_schema(database_url)
        self.db = Database(database_url)
        self.switch = lab.switch()
        self.host: NetnsHost = lab.host("service", self.switch, SERVER_IPV4, SERVER_IPV6)
        self.boot: BootService = start_boot_service(self.host, tmp_path / "boot", database_url)
        kernel_dir = self.boot.files_dir / "testkernel"
        kernel_dir.mkdir()
        shutil.copyfile(test_kernel.vmlinuz, kernel_dir / "vmlinuz")
        shutil.copyfile(test_kernel.initramfs, kernel_dir / "initramfs.gz")
        self.aio: EnclumeAio = start_enclume_aio(self.host, tmp_path / "aio", database_url,
                                                 self.boot)

    def enroll(self, driver: str, machine: QemuBackedMachine, driver_info: dict[str, Any],
               nonce: str) -> str:
        firmware = machine.machine.firmware
        """A node for `machine` through the API, and the PXE boot to the test kernel that the
        boot service serves for its MAC (written as the ipxe boot interface leaves it)."""
        mac = machine.machine.mac
        node = self.aio.call("POST", "/v1/nodes", {
            "driver": driver, "name": f"lab-{mac.replace(':', '')}", "driver_info": driver_info,
            "properties": {"capabilities": f"boot_mode:{firmware}"}})
        self.aio.call("POST", "/v1/ports", {"node_uuid": node["uuid"], "address": mac,
                                            "pxe_enabled": True})
        with self.db.session() as session:
            row = session.query(Node).filter_by(uuid=node["uuid"]).one()
            row.driver_internal_info = {**(row.driver_internal_info or {}), "boot": {
                "mode": "ramdisk", "kernel": self.boot.file_url("testkernel/vmlinuz"),
                "ramdisk": self.boot.file_url("testkernel/initramfs.gz"),
                "kernel_params": f"console=ttyS0 enclume_nonce={nonce}", "boot_mode": firmware}}
        kernel_url = self.boot.file_url("testkernel/vmlinuz")
        wait_until(lambda: kernel_url in (self.boot.get(f"/boot.ipxe?mac={mac}") or ""),
                   PICKUP_TIMEOUT_S, "enclume-boot to serve the node's boot script",
                   interval=0.3)
        return str(node["uuid"])

    def power(self, node: str, target: str, reached: str | None) -> dict[str, Any]:
        """Ask for a power change; wait until the node's power state is `reached` (when
        given) and no change is in progress; the node."""
        self.aio.call("PUT", f"/v1/nodes/{node}/states/power", {"target": target})
        seen: dict[str, Any] = {}

        def done() -> bool:
            seen.update(self.aio.node(node))
            return seen["target_power_state"] is None and (
                reached is None or seen["power_state"] == reached)

        wait_until(done, POWER_TIMEOUT_S, f"node {node} to finish {target!r}", interval=0.3,
                   on_timeout=lambda: f"power_state={seen.get('power_state')} "
                                      f"last_error={seen.get('last_error')}")
        return seen


def _wait_running(machine: QemuBackedMachine) -> None:
    machine.wait_idle()
    assert machine.errors == []
    assert machine.machine.running()


def test_ipmi_bmc_drives_a_qemu_machine_pxe_once_then_disk_then_off(
        lab: Lab, tmp_path: Path, test_kernel: BuiltTestKernel, test_images: BuiltTestImages,
        record_timing: RecordTiming) -> None:
    service = Service(lab, tmp_path, test_kernel)
    password = secrets.token_urlsafe(12)
    with VirtualBmcs(service.host, tmp_path / "bmcs", BMC_USER, password) as bmcs:
        machine = bmcs.machine(lab.machine("ipmi", service.switch, boot_device="disk",
                                           disk_image=test_images.disk_qcow2))
        nonce = secrets.token_hex(4)
        node = service.enroll("ipmi", machine, bmcs.ipmi(machine), nonce)
        assert password not in json.dumps(service.aio.node(node))

        # Next boot from the network, once: the conductor's IPMI management interface.
        service.aio.call("PUT", f"/v1/nodes/{node}/management/boot_device",
                         {"boot_device": "pxe", "persistent": False})
        assert machine.boot_setting() == BootSetting("pxe", persistent=False, uefi=False)
        assert service.aio.call("GET", f"/v1/nodes/{node}/management/boot_device") == \
            {"boot_device": "pxe", "persistent": False}

        service.power(node, "power on", "power on")
        _wait_running(machine)
        line = machine.machine.wait_for_serial(KERNEL_MARKER, BOOT_TIMEOUT_S)
        record_timing("IPMI power on -> test kernel marker (PXE, BIOS)",
                      machine.machine.seconds_since_start())
        assert f"enclume_nonce={nonce}" in line
        assert [boot.order for boot in machine.boots] == ["network"]
        assert machine.boot_setting() == BootSetting()  # the one-time override is used up
        # The test kernel powers itself off: QEMU stays in "shutdown", the BMC says off.
        machine.machine.wait_for_status("shutdown", 30)
        assert machine.power_state() == "off"

        # Power on again: a new QEMU process in the machine's own order, from its disk, which
        # kept its contents: the whole-disk test image boots (no config drive: "unknown").
        service.power(node, "power on", "power on")
        _wait_running(machine)
        machine.machine.wait_for_serial(f"{IMAGE_MARKER} booted unknown unknown",
                                        BOOT_TIMEOUT_S)
        record_timing("IPMI power on -> test image booted (disk, BIOS)",
                      machine.machine.seconds_since_start())
        assert [(boot.how, boot.order) for boot in machine.boots] == [
            ("start", "network"), ("start", "disk")]
        assert "Booting from Hard Disk" in machine.machine.serial_text()

        # Power off (hard): the QEMU process is gone.
        process = machine.machine.process
        assert process is not None and process.alive()
        node_after = service.power(node, "power off", "power off")
        machine.wait_idle()
        assert not process.alive() and not machine.machine.running()
        assert node_after["last_error"] is None


def test_redfish_bmc_and_wake_on_lan_drive_qemu_machines(
        lab: Lab, tmp_path: Path, test_kernel: BuiltTestKernel, test_images: BuiltTestImages,
        record_timing: RecordTiming) -> None:
    service = Service(lab, tmp_path, test_kernel)
    password = secrets.token_urlsafe(12)
    wol_host = lab.host("wol-nic", service.switch, WOL_HOST_IPV4)
    with VirtualBmcs(service.host, tmp_path / "bmcs", BMC_USER, password) as bmcs:
        redfish = bmcs.machine(lab.machine("redfish", service.switch, boot_device="disk",
                                           disk_image=test_images.disk_qcow2))
        info = bmcs.redfish(redfish)
        redfish_node = service.enroll("redfish", redfish, info, "unused")
        woken = bmcs.machine(lab.machine("wol", service.switch, boot_device="network",
                                         firmware="uefi"))
        nonce = secrets.token_hex(4)
        wol_node = service.enroll("wol", woken, bmcs.wol(woken, wol_host), nonce)

        # Redfish (sushy against sushy-emulator): power on boots the disk's test image.
        service.power(redfish_node, "power on", "power on")
        _wait_running(redfish)
        redfish.machine.wait_for_serial(f"{IMAGE_MARKER} booted unknown unknown",
                                        BOOT_TIMEOUT_S)
        record_timing("Redfish power on -> test image booted (disk, BIOS)",
                      redfish.machine.seconds_since_start())
        # Soft power off through the API (GracefulShutdown): the ACPI power button, and the
        # guest powers itself off; the node is off once the BMC says so.
        node_after = service.power(redfish_node, "soft power off", "power off")
        assert node_after["last_error"] is None
        redfish.machine.wait_for_serial(f"{IMAGE_MARKER} power button: powering off", 30)
        redfish.machine.wait_for_status("shutdown", 30)
        assert redfish.power_state() == "off"
        assert redfish.machine.running()  # powered off by its OS, not pulled (ForceOff)
        # Hard power off through the API (ForceOff): the QEMU process is gone.
        service.power(redfish_node, "power off", "power off")
        redfish.wait_idle()
        assert not redfish.machine.running()
        # Boot override over Redfish (PATCH Boot): persistent, as sushy-emulator has it.
        service.aio.call("PUT", f"/v1/nodes/{redfish_node}/management/boot_device",
                         {"boot_device": "pxe", "persistent": False})
        assert redfish.boot_setting().device == "pxe"
        assert service.aio.call("GET", f"/v1/nodes/{redfish_node}/management/boot_device") == \
            {"boot_device": "pxe", "persistent": True}

        # Wake-on-LAN: the conductor's magic packet crosses the switch, the listener starts
        # the machine, which PXE-boots the test kernel.
        assert not woken.machine.running()
        service.power(wol_node, "power on", None)
        wait_until(lambda: woken.boots != [], 30, "the magic packet to wake the machine")
        _wait_running(woken)
        line = woken.machine.wait_for_serial(KERNEL_MARKER, BOOT_TIMEOUT_S)
        record_timing("Wake-on-LAN power on -> test kernel marker (PXE, UEFI)",
                      woken.machine.seconds_since_start())
        assert f"enclume_nonce={nonce}" in line
        [wake] = bmcs.wol_listeners[0].wakes
        assert wake.mac == woken.machine.mac and wake.powered_on
        assert wake.source == service.host.ipv4


def test_ipmitool_reset_keeps_the_process_unless_the_boot_order_changes(
        lab: Lab, tmp_path: Path) -> None:
    """Reset, power cycle and boot overrides as ipmitool sets them (from the service host),
    read from the QEMU processes themselves. No OS is booted: firmware only."""
    switch = lab.switch()
    host = lab.host("service", switch, SERVER_IPV4)
    password = secrets.token_urlsafe(12)
    with VirtualBmcs(host, tmp_path / "bmcs", BMC_USER, password) as bmcs:
        machine = bmcs.machine(lab.machine("node", switch, boot_device="disk"))
        info = bmcs.ipmi(machine)
        password_file = tmp_path / "ipmi-password"
        password_file.write_text(password)

        def ipmitool(*args: str) -> str:
            done = host.execute(["ipmitool", "-I", "lanplus", "-H", info["ipmi_address"],
                                 "-p", str(info["ipmi_port"]), "-U", BMC_USER,
                                 "-f", str(password_file), *args], check=False)
            return done.stdout + done.stderr

        def pid() -> int:
            machine.wait_idle()
            assert machine.errors == []
            assert machine.machine.process is not None and machine.machine.running()
            return machine.machine.process.pid

        assert "Chassis Power is off" in ipmitool("chassis", "power", "status")
        assert "not supported in present state" in ipmitool("chassis", "power", "reset")
        ipmitool("chassis", "power", "on")
        first = pid()
        assert "Chassis Power is on" in ipmitool("chassis", "power", "status")
        ipmitool("chassis", "power", "on")  # already on: nothing happens
        assert pid() == first and len(machine.boots) == 1

        ipmitool("chassis", "power", "reset")  # same boot order: the same process resets
        assert pid() == first
        ipmitool("chassis", "bootdev", "pxe")  # once
        ipmitool("chassis", "power", "reset")  # another order: a new process
        second = pid()
        assert second != first and machine.boot_setting() == BootSetting()
        ipmitool("chassis", "bootdev", "disk", "options=persistent")
        ipmitool("chassis", "power", "cycle")
        third = pid()
        assert third != second
        assert machine.boot_setting() == BootSetting("disk", persistent=True)
        assert [(boot.how, boot.order) for boot in machine.boots] == [
            ("start", "disk"), ("reset", "disk"), ("restart", "network"), ("restart", "disk")]
        process = machine.machine.process
        assert process is not None and "drive=disk0,bootindex=1" in " ".join(process.args)

        ipmitool("chassis", "power", "soft")  # no OS listens to the power button: stays on
        assert pid() == third and machine.power_state() == "on"
        ipmitool("chassis", "power", "off")
        machine.wait_idle()
        assert not machine.machine.running()
        assert "Chassis Power is off" in ipmitool("chassis", "power", "status")


def test_serial_console_of_a_qemu_machine_over_ipmi_sol(
        lab: Lab, tmp_path: Path, test_kernel: BuiltTestKernel, test_images: BuiltTestImages,
        record_timing: RecordTiming) -> None:
    """#22: the web console of an ipmi node shows its QEMU machine booting.

    The path: QEMU's serial port is a Unix socket (still logged to serial.log); a relay inside
    the service host's namespace offers it as TCP on 127.0.0.1 there, where OpenIPMI's ipmi_sim
    (the lab's pyghmi BMCs do no SOL) connects its SOL payload; the conductor in enclume-aio
    opens SOL with pyghmi; the test reads the web console's websocket from that namespace.
    The machine is started by the test (ipmi_sim's power does not drive QEMU)."""
    service = Service(lab, tmp_path, test_kernel)
    machine = lab.machine("console", service.switch, boot_device="disk",
                          disk_image=test_images.disk_qcow2)
    serial_path = machine.serial_socket

    def connect_serial() -> socket.socket:
        serial = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        serial.connect(str(serial_path))
        return serial

    relay = in_netns(service.host.name, lambda: TcpForwarder(
        "127.0.0.1", connect=connect_serial, name="serial-relay"))
    try:
        bmc_port = in_netns(service.host.name, free_port)
        password = secrets.token_urlsafe(12)
        workdir = tmp_path / "sol-bmc"
        workdir.mkdir()
        (workdir / "lan.conf").write_text(lan_conf(bmc_port, ("127.0.0.1", relay.port),
                                                   password))
        (workdir / "sim.emu").write_text(EMULATION)
        node = service.aio.call("POST", "/v1/nodes", {
            "driver": "ipmi", "console_interface": "ipmitool-shellinabox",
            "driver_info": {"ipmi_address": "127.0.0.1", "ipmi_port": bmc_port,
                            "ipmi_username": USER, "ipmi_password": password}})["uuid"]
        machine.start()  # its serial socket exists from now on: ipmi_sim connects to it
        service.host.run([IPMI_SIM, "-n", "-c", str(workdir / "lan.conf"),
                          "-f", str(workdir / "sim.emu"), "-s", str(workdir / "state")],
                         "ipmi-sim")
        service.aio.call("PUT", f"/v1/nodes/{node}/states/console", {"enabled": True})
        seen: dict[str, Any] = {}

        def enabled() -> bool:
            seen.update(service.aio.call("GET", f"/v1/nodes/{node}/states/console"))
            return bool(seen["console_enabled"])

        wait_until(enabled, POWER_TIMEOUT_S, "the console enabled", interval=0.3,
                   on_timeout=lambda: f"last_error={service.aio.node(node)['last_error']}")
        info = seen["console_info"]
        assert info["type"] == "shellinabox" and password not in json.dumps(seen)
        base, query = info["url"].split("?", 1)
        url = base.replace("http://", "ws://", 1) + "/ws?" + query
        ws = in_netns(service.host.name, lambda: websocket.create_connection(url, timeout=30))
        shown = b""
        marker = f"{IMAGE_MARKER} booted unknown unknown".encode()
        ws.settimeout(BOOT_TIMEOUT_S)
        while marker not in shown:
            frame = ws.recv()
            shown += frame if isinstance(frame, bytes) else frame.encode()
        record_timing("QEMU start -> test image booted, read on the SOL web console",
                      machine.seconds_since_start())
        assert marker.decode() in machine.serial_text()  # the same line in the serial log

        service.aio.call("PUT", f"/v1/nodes/{node}/states/console", {"enabled": False})
        while True:
            opcode, payload = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
        assert payload[2:] == b"console disabled"
    finally:
        relay.close()
