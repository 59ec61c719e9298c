"""A partition image written by the agent boots its own kernel from the disk: through EXTLINUX
from the MBR (BIOS, SeaBIOS) and through systemd-boot from the EFI system partition (UEFI, OVMF).

The root file system carries the lab's test kernel and initramfs in /boot; QEMU (TCG) boots the
written disk and the test kernel prints its marker with the command line it got, which must hold
the root file system's UUID the agent reported.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ramdisk.testkernel import MARKER, ensure_built
from tests.integration.test_agent_harness import (
    FakeApi,
    ImageServer,
    MiB,
    fake_api_fixture,  # noqa: F401 (the fake_api fixture)
    image_server_fixture,  # noqa: F401 (the image_server fixture)
    make_disk,
    partition_image,
    require_tools,
    running_agent,
    sha256_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BOOT_TIMEOUT_S = 120
OVMF = Path("/usr/share/OVMF/OVMF_CODE.fd")


def boot(disk: Path, serial_log: Path, uefi: bool) -> str:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.fail("qemu-system-x86_64 is missing (Debian qemu-system-x86; `make deps`)")
    if uefi and not OVMF.exists():
        pytest.fail(f"{OVMF} is missing (Debian ovmf; `make deps`)")
    firmware = ["-bios", str(OVMF)] if uefi else []
    argv = [qemu, "-accel", "tcg", "-m", "256", "-nodefaults", "-display", "none",
            "-no-reboot", "-serial", f"file:{serial_log}", *firmware,
            "-drive", f"file={disk},format=raw,if={'virtio' if uefi else 'ide'}"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            text = serial_log.read_text(errors="replace") if serial_log.exists() else ""
            if MARKER in text or process.poll() is not None:
                break
            time.sleep(0.5)
        return serial_log.read_text(errors="replace") if serial_log.exists() else ""
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("boot_mode", ["bios", "uefi"])
def test_partition_image_boots_from_disk(fake_api: FakeApi, image_server: ImageServer,
                                         tmp_path: Path, boot_mode: str) -> None:
    require_tools()
    kernel = ensure_built()
    image = partition_image(image_server.root / "root.img", size=40 * MiB,
                            kernel=kernel.vmlinuz.read_bytes(),
                            initrd=kernel.initramfs.read_bytes())
    disk = make_disk(tmp_path / "disk.img", 256 * MiB)
    with running_agent(fake_api, tmp_path, [disk]) as agent:
        document = agent.run("standby.write_image", {
            "image_url": f"{image_server.url}/root.img", "image_os_hash_algo": "sha256",
            "image_os_hash_value": sha256_of(image), "image_type": "partition",
            "root_mb": 48, "swap_mb": 8, "boot_mode": boot_mode,
            "kernel_append_params": "console=ttyS0 enclume.booted_from=disk"})
    assert document["command_status"] == "SUCCEEDED", document
    root_uuid = document["command_result"]["root_uuid"]
    console = boot(disk, tmp_path / "serial.log", uefi=boot_mode == "uefi")
    booted = [line for line in console.splitlines() if MARKER in line]
    assert booted, f"the disk did not boot; serial console:\n{console[-3000:]}"
    assert f"root=UUID={root_uuid}" in booted[0]
    assert "enclume.booted_from=disk" in booted[0]
    loader_mark = ("BOOT_IMAGE=/boot/vmlinuz-6.1.0-test" if boot_mode == "bios"
                   else "initrd=\\enclume\\initrd")  # EXTLINUX's / systemd-boot's own mark
    assert loader_mark in booted[0], booted[0]
