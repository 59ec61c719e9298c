"""Issue #5: QEMU machines PXE-boot through the real `enclume-boot` into the test kernel.

A vde_switch; a namespace "service host" on it running `enclume-boot` (dnsmasq for DHCP, TFTP,
HTTP) on an SQLite database; a node whose port has the machine's MAC and whose desired boot
(`driver_internal_info["boot"]`) points at the test kernel in the boot files directory. The
machine boots: BIOS with the NIC's iPXE ROM, UEFI (OVMF) with the iPXE ROM, and UEFI with
OVMF's own PXE chainloading ipxe.efi over TFTP. The console must show the test kernel's marker
with the kernel parameters of this node's desired boot.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import pytest

from ramdisk.testkernel import MARKER, BuiltTestKernel
from services.common.db import Database, upgrade_schema
from services.common.models import Node, Port
from tests.lab.conftest import RecordTiming
from tests.lab.harness import Lab, wait_until
from tests.lab.harness.boot_service import BootService, start_boot_service

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SERVER_IPV4 = "10.78.0.1/24"
SERVER_IPV6 = "fd00:78::1/64"
BOOT_TIMEOUT_S = 180.0
PICKUP_TIMEOUT_S = 30.0


def _enroll(db: Database, mac: str, boot: dict[str, str]) -> None:
    """A node with one PXE port `mac` and a desired boot, as the conductor's ipxe boot
    interface leaves it."""
    with db.session() as session:
        node = Node(driver="fake-hardware", name=f"lab-{mac.replace(':', '')}",
                    driver_internal_info={"boot": boot})
        session.add(node)
        session.flush()
        session.add(Port(address=mac, node_id=node.id, pxe_enabled=True))


def _health(service: BootService) -> dict[str, object]:
    body = service.get("/health")
    return json.loads(body) if body else {}


@pytest.mark.parametrize(("firmware", "network_boot"), [
    ("bios", "ipxe-rom"),
    ("uefi", "ipxe-rom"),
    ("uefi", "firmware-pxe"),
], ids=["bios-ipxe", "uefi-ipxe", "uefi-pxe-tftp"])
def test_machine_pxe_boots_test_kernel_through_enclume_boot(
        lab: Lab, test_kernel: BuiltTestKernel, tmp_path: Path, firmware: str,
        network_boot: str, record_timing: RecordTiming) -> None:
    database_url = f"sqlite:///{tmp_path / 'enclume.sqlite'}"
    upgrade_schema(database_url)
    db = Database(database_url)

    switch = lab.switch()
    server = lab.host("service", switch, SERVER_IPV4, SERVER_IPV6)
    service = start_boot_service(server, tmp_path / "boot", database_url)
    kernel_dir = service.files_dir / "testkernel"
    kernel_dir.mkdir()
    shutil.copyfile(test_kernel.vmlinuz, kernel_dir / "vmlinuz")
    shutil.copyfile(test_kernel.initramfs, kernel_dir / "initramfs.gz")

    machine = lab.machine("node", switch, firmware=firmware, network_boot=network_boot)
    nonce = secrets.token_hex(4)
    _enroll(db, machine.mac, {
        "mode": "ramdisk",
        "kernel": service.file_url("testkernel/vmlinuz"),
        "ramdisk": service.file_url("testkernel/initramfs.gz"),
        "kernel_params": f"console=ttyS0 enclume_nonce={nonce}",
        "boot_mode": firmware,
    })
    # The service follows the database by itself: the node's script and DHCP answer appear.
    wait_until(lambda: _health(service).get("answered_macs") == 1, PICKUP_TIMEOUT_S,
               "enclume-boot to answer the node's MAC", interval=0.2)
    script = service.get(f"/boot.ipxe?mac={machine.mac}")
    assert script is not None and service.file_url("testkernel/vmlinuz") in script

    machine.start()
    line = machine.wait_for_serial(MARKER, BOOT_TIMEOUT_S)
    seconds = machine.seconds_since_start()
    record_timing(f"QEMU start -> marker, {firmware} {network_boot}, enclume-boot", seconds)

    # This node's kernel parameters, and the boot NIC's MAC filled in by iPXE from the script.
    assert f"enclume_nonce={nonce}" in line
    assert f"BOOTIF={machine.mac}" in line
    console = machine.serial_text()
    assert f"{service.url}/boot.ipxe?mac=" in console  # iPXE fetched the script from DHCP's URL
    if network_boot == "firmware-pxe":  # OVMF's PXE fetched iPXE over TFTP first
        assert "NBP filename is ipxe.efi" in console
        assert "NBP file downloaded successfully" in console
    machine.wait_for_status("shutdown", 30)  # the test kernel's /init powered off
