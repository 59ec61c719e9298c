"""What an inventory from the agent changes on a node: properties, ports and the kept inventory.

- properties, as Ironic's inspection sets them: ``cpus`` (cpu.count), ``cpu_arch``
  (cpu.architecture), ``memory_mb`` (memory.physical_mb, else total_bytes in MiB) and
  ``local_gb``: the root disk's size in GiB less one (room for partitioning, as Ironic), never
  below 0. The root disk is ``properties.root_device.name`` when given, else the smallest disk
  of at least 4 GiB, else the largest;
- a port for every interface MAC address no port has yet (not PXE-enabled: the boot service
  keeps answering only the ports an operator enabled);
- the inventory itself, one row per node (``GET /v1/nodes/{node}/inventory``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from services.common.macs import parse_mac
from services.common.models import NodeInventory, Port
from services.drivers.base import DriverError
from services.drivers.deploy.image import target_disk

if TYPE_CHECKING:
    from services.conductor.task import Task

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


def _store(task: Task, inventory: dict[str, Any]) -> None:
    row = task.session.scalar(select(NodeInventory)
                              .where(NodeInventory.node_id == task.node.id))
    if row is None:
        task.session.add(NodeInventory(node_id=task.node.id, inventory_data=inventory,
                                       plugin_data={}))
    else:
        row.inventory_data = inventory
        row.plugin_data = {}


def _add_ports(task: Task, macs: list[str]) -> tuple[list[str], list[str]]:
    """Create ports for new MACs; returns (created, taken by another node)."""
    rows = task.session.execute(select(Port.address, Port.node_id)
                                .where(Port.address.in_(macs))).all()
    known = {row.address: row.node_id for row in rows}
    created = [mac for mac in macs if mac not in known]
    for mac in created:
        task.session.add(Port(address=mac, node_id=task.node.id, pxe_enabled=False))
    taken = [mac for mac, node_id in known.items() if node_id != task.node.id]
    return created, taken


def apply(task: Task, raw: Any) -> None:
    inventory = check(raw)
    found = properties_from(inventory, target_disk(task.node))
    task.node.properties = {**(task.node.properties or {}), **found}
    _store(task, inventory)
    created, taken = _add_ports(task, macs_of(inventory))
    task.record("introspection",
                f"Inspection found {found['cpus']} {found['cpu_arch']} CPU(s), "
                f"{found['memory_mb']} MiB of memory, {found['local_gb']} GiB local disk; "
                f"ports created: {', '.join(created) or 'none'}.")
    if taken:
        task.record("introspection", f"MAC address(es) {', '.join(taken)} belong to ports of "
                                     f"other nodes: no port created for them.",
                    severity="WARNING")
