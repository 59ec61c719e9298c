"""The lab harness itself: VLANs on the switch, a machine's console and QMP, PXE with dnsmasq."""

from __future__ import annotations

import secrets
import shutil
import sys
from pathlib import Path

import pytest

from ramdisk.testkernel import MARKER, BuiltTestKernel
from tests.lab.conftest import RecordTiming
from tests.lab.harness import DirectKernel, Lab, NetnsHost, require_tool

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SUBNET = "10.77.0"
SERVER_IPV4 = f"{SUBNET}.1/24"
SERVER_IPV6 = "fd00:77::1/64"
HTTP_PORT = 8080
BOOT_TIMEOUT_S = 180.0
DIRECT_BOOT_TIMEOUT_S = 90.0


def test_hosts_reach_each_other_only_within_a_vlan(lab: Lab) -> None:
    switch = lab.switch()
    first = lab.host("first", switch, f"{SUBNET}.1/24")
    second = lab.host("second", switch, f"{SUBNET}.2/24")
    assert first.pings(second.ipv4, timeout_s=2)

    switch.set_port_vlan(second.port, 200)
    assert switch.port_status(second.port) == (200, True)
    assert not first.pings(second.ipv4)
    assert not second.pings(first.ipv4)

    switch.set_port_vlan(first.port, 200)  # together again, on the other VLAN
    assert first.pings(second.ipv4, timeout_s=2)

    switch.set_port_vlan(first.port, 0)
    assert not first.pings(second.ipv4)


def test_machine_console_and_qmp_power_control(lab: Lab, test_kernel: BuiltTestKernel,
                                               record_timing: RecordTiming) -> None:
    nonce = secrets.token_hex(4)
    machine = lab.machine("direct", direct_kernel=DirectKernel(
        test_kernel.vmlinuz, test_kernel.initramfs, f"console=ttyS0 enclume_nonce={nonce}"))
    machine.start()
    assert machine.status() == "running"
    line = machine.wait_for_serial(MARKER, DIRECT_BOOT_TIMEOUT_S)
    record_timing("QEMU start -> marker, direct kernel boot", machine.seconds_since_start())
    assert f"enclume_nonce={nonce}" in line

    machine.wait_for_status("shutdown", 30)  # the test kernel's /init powered off
    machine.reset()  # the reset button starts a powered-off (-no-shutdown) machine again
    assert machine.status() == "running"
    assert f"enclume_nonce={nonce}" in machine.wait_for_serial(MARKER, DIRECT_BOOT_TIMEOUT_S)

    machine.power_off()
    assert machine.status() == "off"
    assert not machine.running()
    machine.start()  # power on again: a new QEMU process on the same disk and console log
    assert f"enclume_nonce={nonce}" in machine.wait_for_serial(MARKER, DIRECT_BOOT_TIMEOUT_S)
    assert machine.serial_text(since_start=False).count(MARKER) == 3


def _serve_static_pxe(server: NetnsHost, workdir: Path, kernel: BuiltTestKernel,
                      nonce: str) -> None:
    """dnsmasq giving iPXE clients a static script over HTTP that boots the test kernel."""
    www = workdir / "www"
    www.mkdir()
    shutil.copyfile(kernel.vmlinuz, www / "vmlinuz")
    shutil.copyfile(kernel.initramfs, www / "initramfs.gz")
    base = f"http://{server.ipv4}:{HTTP_PORT}"
    # Debian's iPXE (2019) needs initrd=NAME on the command line to hand the initrd over on UEFI.
    (www / "boot.ipxe").write_text(
        "#!ipxe\n"
        f"kernel {base}/vmlinuz initrd=initramfs.gz console=ttyS0 enclume_nonce={nonce}\n"
        f"initrd {base}/initramfs.gz\n"
        "boot\n")
    server.run([sys.executable, "-m", "http.server", "--bind", server.ipv4,
                "--directory", str(www), str(HTTP_PORT)], "http")
    server.run([
        require_tool("dnsmasq"), "--keep-in-foreground", "--log-facility=-", "--log-dhcp",
        "--conf-file=/dev/null", "--port=0", "--interface=tap0", "--bind-interfaces",
        "--user=root", f"--pid-file={workdir / 'dnsmasq.pid'}",
        f"--dhcp-leasefile={workdir / 'dnsmasq.leases'}",
        f"--dhcp-range={SUBNET}.100,{SUBNET}.200,255.255.255.0,5m", "--no-ping",
        # Router advertisements: without them iPXE waits ~13 s for IPv6 to configure.
        "--enable-ra", "--dhcp-range=::,constructor:tap0,ra-only",
        "--dhcp-userclass=set:ipxe,iPXE", f"--dhcp-boot=tag:ipxe,{base}/boot.ipxe",
    ], "dnsmasq")


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_machine_pxe_boots_from_plain_dnsmasq(lab: Lab, test_kernel: BuiltTestKernel,
                                              tmp_path: Path, firmware: str,
                                              record_timing: RecordTiming) -> None:
    switch = lab.switch()
    server = lab.host("server", switch, SERVER_IPV4, SERVER_IPV6)
    nonce = secrets.token_hex(4)
    _serve_static_pxe(server, tmp_path, test_kernel, nonce)
    machine = lab.machine("node", switch, firmware=firmware)
    machine.start()

    line = machine.wait_for_serial(MARKER, BOOT_TIMEOUT_S)
    record_timing(f"QEMU start -> marker, {firmware} PXE, plain dnsmasq",
                  machine.seconds_since_start())
    assert f"enclume_nonce={nonce}" in line
    console = machine.serial_text()
    assert "iPXE" in console
    assert f"http://{server.ipv4}:{HTTP_PORT}/boot.ipxe" in console
