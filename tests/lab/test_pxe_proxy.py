"""Issue #5, proxyDHCP: a classroom whose router owns the addresses. QEMU machines PXE-boot
through `enclume-boot` in proxy mode into the test kernel while a second DHCP server (a plain
dnsmasq without any PXE, as a router's) leases the addresses.

UEFI with OVMF's own PXE takes the path real classroom PCs take: the router's offer plus ours
(PXEClient, next-server), then the boot file name from our port 4011, `ipxe.efi` over TFTP, and
iPXE's own DHCP round getting the script URL from the proxy answer. BIOS with the NIC's iPXE ROM
takes the iPXE proxy path directly.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest

from ramdisk.testkernel import MARKER, BuiltTestKernel
from services.common.db import Database, upgrade_schema
from services.common.models import Node, Port
from tests.lab.conftest import RecordTiming
from tests.lab.harness import Lab, wait_until
from tests.lab.harness.boot_service import start_boot_service
from tests.lab.harness.netns import TAP_NAME

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SERVER_IPV4 = "10.79.0.1/24"
SERVER_IPV6 = "fd00:79::1/64"
ROUTER_IPV4 = "10.79.0.254/24"
ROUTER_RANGE = ("10.79.0.50", "10.79.0.90")
BOOT_TIMEOUT_S = 180.0
PICKUP_TIMEOUT_S = 30.0


@pytest.mark.parametrize(("firmware", "network_boot"), [
    ("uefi", "firmware-pxe"),
    ("bios", "ipxe-rom"),
], ids=["uefi-pxe-tftp", "bios-ipxe"])
def test_machine_pxe_boots_through_proxy_dhcp(lab: Lab, test_kernel: BuiltTestKernel,
                                              tmp_path: Path, firmware: str, network_boot: str,
                                              record_timing: RecordTiming) -> None:
    database_url = f"sqlite:///{tmp_path / 'enclume.sqlite'}"
    upgrade_schema(database_url)
    db = Database(database_url)
    switch = lab.switch()

    router = lab.host("router", switch, ROUTER_IPV4)
    router_dir = tmp_path / "router"
    router_dir.mkdir()
    router.run(["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--port=0",
                f"--interface={TAP_NAME}", "--bind-interfaces", "--no-ping", "--user=root",
                f"--dhcp-range={ROUTER_RANGE[0]},{ROUTER_RANGE[1]},255.255.255.0,1h",
                f"--dhcp-leasefile={router_dir / 'leases'}",
                f"--pid-file={router_dir / 'pid'}"], "router-dhcp")

    server = lab.host("service", switch, SERVER_IPV4, SERVER_IPV6)
    # (The harness's lease range stays in the environment; proxy mode does not use it.)
    service = start_boot_service(server, tmp_path / "boot", database_url,
                                 extra_env={"ENCLUME_BOOT_DHCP_MODE": "proxy"})
    kernel_dir = service.files_dir / "testkernel"
    kernel_dir.mkdir()
    shutil.copyfile(test_kernel.vmlinuz, kernel_dir / "vmlinuz")
    shutil.copyfile(test_kernel.initramfs, kernel_dir / "initramfs.gz")

    machine = lab.machine("pc", switch, firmware=firmware, network_boot=network_boot)
    nonce = secrets.token_hex(4)
    with db.session() as session:
        node = Node(driver="fake-hardware", name=f"pc-{nonce}", driver_internal_info={"boot": {
            "mode": "ramdisk", "kernel": service.file_url("testkernel/vmlinuz"),
            "ramdisk": service.file_url("testkernel/initramfs.gz"),
            "kernel_params": f"console=ttyS0 enclume_nonce={nonce}", "boot_mode": firmware}})
        session.add(node)
        session.flush()
        session.add(Port(address=machine.mac, node_id=node.id, pxe_enabled=True))
    wait_until(lambda: '"answered_macs":1' in (service.get("/health") or ""), PICKUP_TIMEOUT_S,
               "enclume-boot to answer the machine's MAC", interval=0.2)

    machine.start()
    line = machine.wait_for_serial(MARKER, BOOT_TIMEOUT_S)
    record_timing(f"QEMU start -> marker, {firmware} {network_boot}, proxyDHCP",
                  machine.seconds_since_start())
    assert f"enclume_nonce={nonce}" in line
    leases = (router_dir / "leases").read_text()
    assert machine.mac in leases  # the address came from the router, not from us
    if network_boot == "firmware-pxe":
        console = machine.serial_text()
        assert "NBP filename is ipxe.efi" in console
