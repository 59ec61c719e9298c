"""Issue #7: the test OS images built by the project (`make testimages`, ramdisk/testimages).

The whole-disk image boots straight from the machine's disk (SeaBIOS -> mbr.bin -> SYSLINUX, or
OVMF -> systemd-boot at /EFI/BOOT/BOOTX64.EFI; then kernel + initramfs, no PXE) on a tenant
network: a namespace host with dnsmasq (DHCP, itself as router) and a TCP listener. The image's
/init gets a lease, reads hostname and node UUID from the config drive attached as a second disk
(an ISO9660 image labelled config-2, made here with genisoimage as Ironic makes them) and
reports "booted HOSTNAME UUID" to the router. The partition image is checked for the layout the
agent's boot loader installer looks for.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from agent.bootloader import find_kernel
from ramdisk.testimages import MARKER, REPORT_PORT, BuiltTestImages
from tests.lab.conftest import RecordTiming
from tests.lab.harness import Lab
from tests.lab.harness.qemu import UEFI_DISK_BOOT
from tests.lab.harness.tenant import TenantNetwork

pytestmark = [pytest.mark.lab, pytest.mark.slow]

TENANT_IPV4 = "10.82.0.1/24"
BOOT_TIMEOUT_S = 150.0


def make_config_drive(directory: Path, meta_data: dict[str, str]) -> Path:
    """An ISO9660 config drive (label config-2) holding openstack/latest/meta_data.json."""
    tree = directory / "configdrive"
    latest = tree / "openstack" / "latest"
    latest.mkdir(parents=True)
    (latest / "meta_data.json").write_text(json.dumps(meta_data))
    image = directory / "configdrive.iso"
    subprocess.run(["genisoimage", "-quiet", "-o", str(image), "-V", "config-2", "-J", "-r",
                    str(tree)], check=True, capture_output=True, timeout=60)
    return image


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_whole_disk_image_boots_from_disk_and_reports_its_config_drive_hostname(
        lab: Lab, test_images: BuiltTestImages, tmp_path: Path, record_timing: RecordTiming,
        firmware: str) -> None:
    switch = lab.switch()
    tenant_host = lab.host("tenant", switch, TENANT_IPV4)
    tenant = TenantNetwork(tenant_host, REPORT_PORT)
    try:
        node_uuid = str(uuid.uuid4())
        hostname = f"tenant-{node_uuid[:8]}"
        drive = make_config_drive(tmp_path, {"uuid": node_uuid, "hostname": hostname,
                                             "name": hostname})
        machine = lab.machine("vm", switch, boot_device="disk", firmware=firmware,
                              disk_image=test_images.disk_qcow2, extra_disks=(drive,))
        machine.start()
        at, peer, line = tenant.reports.wait_for("booted ", BOOT_TIMEOUT_S)
        seconds = at - (machine.started_at or at)
        loader = "SYSLINUX" if firmware == "bios" else "systemd-boot"
        record_timing(f"QEMU start -> 'booted' report, whole-disk image ({firmware.upper()}, "
                      f"{loader})", seconds)

        assert line == f"booted {hostname} {node_uuid}"
        leases = tenant.leases_file.read_text()
        assert machine.mac in leases and peer in leases  # it reported from its DHCP address
        console = machine.serial_text()
        # Booted by the image's own boot loader from the disk; the NIC's ROM never booted.
        if firmware == "bios":
            assert "Booting from Hard Disk" in console and "SYSLINUX" in console
        else:
            assert UEFI_DISK_BOOT.search(console), console[-3000:]
            assert "PXE" not in console and "HTTP" not in console
        assert "iPXE initialising devices" not in console
        assert f"{MARKER} config drive" in console
        assert f"{MARKER} booted {hostname} {node_uuid}" in console
        machine.wait_for_serial(f"{MARKER} reported to {tenant_host.ipv4}:{REPORT_PORT}: yes",
                                30)
    finally:
        tenant.close()


def test_images_are_published_with_checksums_and_the_partition_layout_the_agent_expects(
        test_images: BuiltTestImages, tmp_path: Path) -> None:
    for image in (test_images.disk_raw, test_images.disk_qcow2, test_images.partition_raw,
                  test_images.partition_qcow2):
        digest = subprocess.run(["sha256sum", str(image)], capture_output=True, text=True,
                                check=True).stdout.split()[0]
        assert test_images.checksum_file(image).read_text() == f"{digest}  {image.name}\n"
    info = subprocess.run(["qemu-img", "info", "--output=json", str(test_images.disk_qcow2)],
                          capture_output=True, text=True, check=True).stdout
    assert json.loads(info)["format"] == "qcow2"

    # The partition image is an ext4 root file system with the kernel and initrd in /boot.
    blkid = subprocess.run(["blkid", "-o", "export", str(test_images.partition_raw)],
                           capture_output=True, text=True, check=True).stdout
    assert "TYPE=ext4" in blkid
    extracted = tmp_path / "root"
    extracted.mkdir()
    subprocess.run(["debugfs", "-R", f"rdump /boot {extracted}", str(test_images.partition_raw)],
                   capture_output=True, check=True)
    kernel, initrd = find_kernel(extracted)
    version = test_images.kernel_version
    assert (kernel, initrd) == (f"/boot/vmlinuz-{version}", f"/boot/initrd.img-{version}")
    assert (extracted / "boot" / f"vmlinuz-{version}").read_bytes() == \
        test_images.vmlinuz.read_bytes()
