"""Reading the inventory the agent sends: its check, the node properties it gives (``cpus``,
``cpu_arch``, ``memory_mb``, ``local_gb`` as services/drivers/inspect/inventory.py sets them)
and its MAC addresses. Shared by the agent inspect interface, discovery and the API."""

from __future__ import annotations

from typing import Any

from services.common.exceptions import DriverError
from services.common.macs import parse_mac

MIB = 1024**2
GIB = 1024**3
MIN_ROOT_DISK_BYTES = 4 * GIB
NO_MAC = "00:00:00:00:00:00"


class MalformedInventory(DriverError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the agent's inventory is malformed: {reason}")


def _section(inventory: dict[str, Any], key: str, kind: type) -> Any:
    value = inventory.get(key)
    if not isinstance(value, kind):
        raise MalformedInventory(f'"{key}" must be a {kind.__name__}')
    return value


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedInventory(f"{what} must be a whole number, not {value!r}")
    return value


def check(inventory: Any) -> dict[str, Any]:
    if not isinstance(inventory, dict):
        raise MalformedInventory("expected an object")
    cpu = _section(inventory, "cpu", dict)
    _whole(cpu.get("count"), "cpu.count")
    if not isinstance(cpu.get("architecture"), str):
        raise MalformedInventory("cpu.architecture must be a string")
    memory = _section(inventory, "memory", dict)
    if memory.get("physical_mb") is None:
        _whole(memory.get("total_bytes"), "memory.total_bytes")
    else:
        _whole(memory.get("physical_mb"), "memory.physical_mb")
    for disk in _section(inventory, "disks", list):
        if not isinstance(disk, dict) or not isinstance(disk.get("name"), str):
            raise MalformedInventory("every disk needs a name")
        _whole(disk.get("size"), f"the size of disk {disk['name']}")
    for interface in _section(inventory, "interfaces", list):
        if not isinstance(interface, dict):
            raise MalformedInventory("every interface must be an object")
    return inventory


def root_disk(disks: list[dict[str, Any]], wanted: str | None) -> dict[str, Any] | None:
    if wanted:
        return next((d for d in disks if d["name"] == wanted), None)
    big_enough = [d for d in disks if d["size"] >= MIN_ROOT_DISK_BYTES]
    if big_enough:
        return min(big_enough, key=lambda d: d["size"])
    return max(disks, key=lambda d: d["size"], default=None)


def properties_from(inventory: dict[str, Any], root_device_name: str | None) -> dict[str, Any]:
    cpu, memory = inventory["cpu"], inventory["memory"]
    memory_mb = memory.get("physical_mb")
    if memory_mb is None:
        memory_mb = memory["total_bytes"] // MIB
    disk = root_disk(inventory["disks"], root_device_name)
    local_gb = max(0, disk["size"] // GIB - 1) if disk else 0
    return {"cpus": cpu["count"], "cpu_arch": cpu["architecture"], "memory_mb": memory_mb,
            "local_gb": local_gb}


def macs_of(inventory: dict[str, Any]) -> list[str]:
    found = (parse_mac(i.get("mac_address")) for i in inventory["interfaces"])
    return list(dict.fromkeys(mac for mac in found if mac and mac != NO_MAC))
