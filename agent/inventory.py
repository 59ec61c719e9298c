"""inventory.get: CPUs, memory, disks, NICs (with LLDP neighbours), the system's vendor and
product, the boot mode and NIC."""

from __future__ import annotations

import fcntl
import os
import platform
import socket
import struct
from pathlib import Path
from typing import Any

from agent.disks import Disk

SYS_NET = Path("/sys/class/net")
SYS_MEMORY = Path("/sys/devices/system/memory")
SYS_DMI = Path("/sys/class/dmi/id")
SIOCGIFADDR = 0x8915


def cpu() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"count": os.cpu_count() or 1, "architecture": platform.machine(),
            "model_name": model}


def memory() -> dict[str, Any]:
    total = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) * 1024
    physical = total
    try:  # the online memory blocks count what the kernel reserved for itself too
        block = int((SYS_MEMORY / "block_size_bytes").read_text().strip(), 16)
        online = sum(1 for entry in SYS_MEMORY.glob("memory*/online")
                     if entry.read_text().strip() == "1")
        if online:
            physical = block * online
    except (OSError, ValueError):
        pass
    return {"total_bytes": total, "physical_mb": physical // (1024 * 1024)}


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:  # e.g. carrier of an interface that is down
        return None


def ipv4_address(name: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR,
                                 struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(answer[20:24])


def interface_names() -> list[str]:
    """Interfaces with a real MAC address (no loopback)."""
    names = []
    for entry in sorted(SYS_NET.iterdir()) if SYS_NET.is_dir() else []:
        mac = _read(entry / "address")
        if entry.name != "lo" and mac and mac != "00:00:00:00:00:00" and len(mac) == 17:
            names.append(entry.name)
    return names


def interfaces(lldp: dict[str, list[list[object]]]) -> list[dict[str, Any]]:
    return [{"name": name, "mac_address": _read(SYS_NET / name / "address"),
             "ipv4_address": ipv4_address(name),
             "has_carrier": _read(SYS_NET / name / "carrier") == "1",
             "lldp": lldp.get(name)} for name in interface_names()]


def boot_mode() -> str:
    return "uefi" if Path("/sys/firmware/efi").is_dir() else "bios"


def system_vendor() -> dict[str, str | None]:
    """What the firmware says the machine is (SMBIOS, Ironic's names); None where unreadable."""
    return {"manufacturer": _read(SYS_DMI / "sys_vendor"),
            "product_name": _read(SYS_DMI / "product_name"),
            "serial_number": _read(SYS_DMI / "product_serial")}


def collect(disks: list[Disk], lldp: dict[str, list[list[object]]],
            boot_mac: str | None = None) -> dict[str, Any]:
    """The inventory; ``boot_mac`` (BOOTIF) is reported as boot.pxe_interface, as Ironic's
    agent does."""
    boot: dict[str, Any] = {"current_boot_mode": boot_mode()}
    if boot_mac:
        boot["pxe_interface"] = boot_mac
    return {"inventory": {"cpu": cpu(), "memory": memory(),
                          "disks": [disk.describe() for disk in disks],
                          "interfaces": interfaces(lldp),
                          "system_vendor": system_vendor(),
                          "boot": boot}}
