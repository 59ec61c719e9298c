"""The one renderer of iPXE scripts: what a machine's iPXE runs after fetching its boot script.

A machine's iPXE asks the boot service for ``/boot.ipxe?mac=${netX/mac}`` (iPXE fills in the MAC
of the interface it booted from). The answer depends on the node's desired boot, which the
conductor's boot interfaces keep in ``driver_internal_info["boot"]``:

- ``{"mode": "ramdisk", "kernel", "ramdisk", "kernel_params", ...}``: download the deploy kernel
  and ramdisk (a few attempts, then reboot to start PXE again) and boot them;
- ``{"mode": "instance", "kernel", "ramdisk", "kernel_params"}`` (a diskless node, the ``ramdisk``
  deploy interface): the same script with the instance's kernel and ramdisk, every boot; with
  ``boot_iso`` instead, iPXE boots that ISO over HTTP (``sanboot``);
- ``{"mode": "local", "boot_mode": "bios"|"uefi"}``: boot the local disk — BIOS boots drive 0x80,
  UEFI leaves iPXE so that the firmware goes on to its next boot entry;
- no desired boot, or a MAC no node has: leave iPXE (``exit``), the firmware goes on; with
  discovery on, a MAC no node has gets the ramdisk with ``enclume.discovery=1`` instead.

Kernel parameters of the deploy ramdisk, read by the agent (``agent_kernel_params`` in
``services/common/bootconfig/params.py``):
- ``enclume.api_url=URL``: the API the agent looks itself up at and heartbeats to;
- ``enclume.node=UUID``: the node the conductor expects to boot, or ``enclume.discovery=1`` for
  a machine no node has yet;
- then the operator's extra parameters (``kernel_append_params``);
- added by the script itself: ``initrd=ramdisk`` (the name the kernel's EFI stub needs) and
  ``BOOTIF=<MAC of the boot interface>`` (``aa:bb:cc:dd:ee:ff``, as iPXE writes it).

Values that come from users (URLs, kernel parameters) are checked by ``check_safe`` before they
are written into a script, so that no value can add an iPXE command or expand a setting.
"""

from __future__ import annotations

from services.common.bootconfig.entry import BootEntry
from services.common.bootconfig.params import UnsafeScriptValue, check_safe, check_url

SCRIPT_PATH = "/boot.ipxe"
# iPXE expands this to the MAC address of the network device it last opened (the boot NIC).
MAC_SETTING = "${netX/mac}"
# The name the ramdisk gets in iPXE; the kernel needs "initrd=<name>" under UEFI.
RAMDISK_NAME = "ramdisk"
DOWNLOAD_ATTEMPTS = 3
RETRY_PAUSE_S = 5
GIVE_UP_PAUSE_S = 30
BIOS_FIRST_DISK = "0x80"
BOOT_MODES = ("bios", "uefi")

def script_url(base_url: str) -> str:
    """The URL DHCP gives to iPXE clients; iPXE expands the MAC setting itself."""
    return f"{base_url.rstrip('/')}{SCRIPT_PATH}?mac={MAC_SETTING}"


def _script(*lines: str) -> str:
    return "\n".join(("#!ipxe", *lines)) + "\n"


def ramdisk_script(kernel: str, ramdisk: str, kernel_params: str, label: str,
                   what: str = "deploy ramdisk") -> str:
    """Download the kernel and ramdisk (a few attempts) and boot them; reboot when all failed.
    ``what`` names them in the script's comment and messages."""
    check_url("the kernel URL", kernel)
    check_url("the ramdisk URL", ramdisk)
    params = check_safe("the kernel parameters", kernel_params).strip()
    check_safe("the node label", label)
    check_safe("the boot's name", what)
    command_line = " ".join(part for part in (f"initrd={RAMDISK_NAME}", params,
                                              f"BOOTIF={MAC_SETTING}") if part)
    return _script(
        f"# Enclume: {what} of {label}",
        "set enclume_attempt:int32 0",
        ":enclume_fetch",
        "inc enclume_attempt",
        "imgfree",
        f"kernel {kernel} {command_line} || goto enclume_failed",
        f"initrd --name {RAMDISK_NAME} {ramdisk} || goto enclume_failed",
        "boot || goto enclume_failed",
        ":enclume_failed",
        f"iseq ${{enclume_attempt}} {DOWNLOAD_ATTEMPTS} && goto enclume_give_up ||",
        f"echo Enclume: loading the {what} failed, attempt ${{enclume_attempt}} of "
        f"{DOWNLOAD_ATTEMPTS}, trying again in {RETRY_PAUSE_S} s",
        f"sleep {RETRY_PAUSE_S}",
        "goto enclume_fetch",
        ":enclume_give_up",
        f"echo Enclume: could not load the {what}, rebooting in {GIVE_UP_PAUSE_S} s",
        f"sleep {GIVE_UP_PAUSE_S}",
        "reboot",
    )


def iso_script(boot_iso: str, label: str) -> str:
    """Boot an ISO over HTTP (iPXE's SAN boot of an http URL); reboot when that failed."""
    check_url("the boot ISO URL", boot_iso)
    check_safe("the node label", label)
    return _script(
        f"# Enclume: instance ISO of {label}",
        f"sanboot --no-describe {boot_iso} || goto enclume_failed",
        ":enclume_failed",
        f"echo Enclume: booting the instance ISO failed, rebooting in {GIVE_UP_PAUSE_S} s",
        f"sleep {GIVE_UP_PAUSE_S}",
        "reboot",
    )


def local_script(boot_mode: str, label: str) -> str:
    """Boot the local disk: BIOS boots drive 0x80; UEFI returns to the firmware's boot order."""
    if boot_mode not in BOOT_MODES:
        raise UnsafeScriptValue(f"the boot mode must be one of {', '.join(BOOT_MODES)}, "
                                f"not {boot_mode!r}")
    check_safe("the node label", label)
    if boot_mode == "uefi":
        return _script(f"# Enclume: {label} boots from its disk: back to the firmware's next "
                       f"boot entry", "exit")
    return _script(
        f"# Enclume: {label} boots from its first disk",
        f"sanboot --no-describe --drive {BIOS_FIRST_DISK} || goto enclume_failed",
        ":enclume_failed",
        "echo Enclume: booting the first disk failed, trying the next boot device",
        "exit 1",
    )


def exit_script(reason: str) -> str:
    """Leave iPXE: the firmware goes on to its next boot device."""
    return _script(f"# Enclume: {check_safe('the reason', reason)}", "exit")


def chain_script(base_url: str) -> str:
    """For a request without a MAC: ask again, with the MAC of the boot interface."""
    return _script(f"chain {script_url(check_url('the boot URL', base_url))}")


def script_for(entry: BootEntry | None, label: str, default_boot_mode: str) -> str:
    """The script of a node's desired boot, or exit when it has none."""
    if entry is None:
        return exit_script(f"no boot is planned for {label}")
    if entry.mode == "ramdisk":
        return ramdisk_script(entry.kernel or "", entry.ramdisk or "", entry.kernel_params,
                              label)
    if entry.mode == "instance":
        if entry.boot_iso:
            return iso_script(entry.boot_iso, label)
        return ramdisk_script(entry.kernel or "", entry.ramdisk or "", entry.kernel_params,
                              label, what="instance kernel and ramdisk")
    if entry.mode == "local":
        return local_script(entry.boot_mode or default_boot_mode, label)
    raise UnsafeScriptValue(f"unknown boot mode {entry.mode!r} for {label}")
