"""Issue #22: a diskless machine of the lab, deployed with the `ramdisk` deploy interface.

A vde_switch; a namespace "service host" running `enclume-boot` and `enclume-aio` on one SQLite
database; a BIOS QEMU machine behind an IPMI BMC (pyghmi emulator, tests/lab/harness/bmcs.py)
whose disk holds the lab's whole-disk test image and comes first in its own boot order. The
node (`ipmi`, `ipxe` boot, `ramdisk` deploy, no automated cleaning) is deployed with the test
images' kernel and initramfs as its instance: the conductor powers it off, sets its boot device
to the network (persistently) and powers it on through the BMC; iPXE gets the instance's script
from the boot service, boots the kernel with `enclume.node=<uuid>` and the node's
`kernel_append_params`, and the test OS (ramdisk/testimages/init.sh) reports "booted ..." over
TCP to the listener the command line names. The disk is never written: its file's hash is the
same before and after. Undeploy powers the machine off and removes the instance's boot.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import time
from pathlib import Path

import pytest

from ramdisk.testimages import BuiltTestImages
from services.common.db import upgrade_schema
from tests.lab.conftest import RecordTiming
from tests.lab.harness import Lab, wait_until
from tests.lab.harness.aio import start_enclume_aio
from tests.lab.harness.bmcs import VirtualBmcs
from tests.lab.harness.boot_service import start_boot_service
from tests.lab.harness.tenant import ReportListener

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SERVER_IPV4 = "10.84.0.1/24"
SERVER_IPV6 = "fd00:84::1/64"
REPORT_PORT = 7071
STATE_TIMEOUT_S = 90.0
BOOT_TIMEOUT_S = 240.0
BMC_USER = "admin"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_diskless_machine_boots_its_instance_from_the_network_and_reports(
        lab: Lab, tmp_path: Path, test_images: BuiltTestImages,
        record_timing: RecordTiming) -> None:
    database_url = f"sqlite:///{tmp_path / 'enclume.sqlite'}"
    upgrade_schema(database_url)
    switch = lab.switch()
    server = lab.host("service", switch, SERVER_IPV4, SERVER_IPV6)
    boot = start_boot_service(server, tmp_path / "boot", database_url)
    files = boot.files_dir / "diskless"
    files.mkdir()
    shutil.copyfile(test_images.directory / "vmlinuz", files / "vmlinuz")
    shutil.copyfile(test_images.directory / "initrd.img", files / "initrd.img")
    aio = start_enclume_aio(server, tmp_path / "aio", database_url, boot)
    listener = ReportListener(server, REPORT_PORT)
    password = secrets.token_urlsafe(12)
    with VirtualBmcs(server, tmp_path / "bmcs", BMC_USER, password) as bmcs:
        machine = bmcs.machine(lab.machine("diskless", switch, boot_device="disk",
                                           disk_image=test_images.disk_qcow2))
        mac = machine.machine.mac
        nonce = secrets.token_hex(4)
        node = aio.call("POST", "/v1/nodes", {
            "driver": "ipmi", "name": "lab-diskless", "boot_interface": "ipxe",
            "deploy_interface": "ramdisk", "automated_clean": False,
            # the ipxe boot interface checks that a deploy ramdisk is reachable; with no
            # automated cleaning none boots in this test
            "driver_info": {**bmcs.ipmi(machine), "deploy_kernel": "diskless/vmlinuz",
                            "deploy_ramdisk": "diskless/initrd.img"},
            "properties": {"capabilities": "boot_mode:bios"}})
        uuid = str(node["uuid"])
        aio.call("POST", "/v1/ports", {"node_uuid": uuid, "address": mac, "pxe_enabled": True})
        for target, state in (("manage", "manageable"), ("provide", "available")):
            aio.call("PUT", f"/v1/nodes/{uuid}/states/provision", {"target": target})
            aio.wait_for_provision_state(uuid, state, STATE_TIMEOUT_S)
        aio.call("PATCH", f"/v1/nodes/{uuid}", [{"op": "add", "path": "/instance_info", "value": {
            "kernel": "diskless/vmlinuz", "ramdisk": "diskless/initrd.img",
            "kernel_append_params": f"console=ttyS0 enclume_report={server.ipv4}:"
                                    f"{REPORT_PORT} diskless_nonce={nonce}"}}])
        disk_before = _sha256(machine.machine.disk)

        started = time.monotonic()
        aio.call("PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "active"})
        active = aio.wait_for_provision_state(uuid, "active", STATE_TIMEOUT_S,
                                              failed=("deploy failed",))
        assert active["last_error"] is None and active["power_state"] == "power on"
        assert active["driver_internal_info"]["boot"]["mode"] == "instance"
        script = boot.get(f"/boot.ipxe?mac={mac}") or ""
        assert f"instance kernel and ramdisk of node {uuid}" in script

        _, peer, report = listener.wait_for("booted ", BOOT_TIMEOUT_S)
        record_timing("ramdisk deploy request -> diskless OS reports (BIOS, ipxe, IPMI)",
                      time.monotonic() - started)
        console = machine.machine.serial_text()
        assert f"enclume.node={uuid}" in console and f"diskless_nonce={nonce}" in console
        assert [boot.order for boot in machine.boots][-1] == "network"
        assert report.startswith("booted ") and peer != server.ipv4
        assert _sha256(machine.machine.disk) == disk_before  # nothing written, at any boot

        aio.call("PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "deleted"})
        available = aio.wait_for_provision_state(uuid, "available", STATE_TIMEOUT_S)
        assert "boot" not in available["driver_internal_info"]
        assert available["power_state"] == "power off"
        wait_until(lambda: not machine.machine.running(), 30, "the machine to be off")
        assert _sha256(machine.machine.disk) == disk_before
    listener.close()
