"""What an inventory from the agent changes on a node: properties, ports and the kept inventory.

- properties, as Ironic's inspection sets them: ``cpus`` (cpu.count), ``cpu_arch``
  (cpu.architecture), ``memory_mb`` (memory.physical_mb, else total_bytes in MiB) and
  ``local_gb``: the root disk's size in GiB less one (room for partitioning, as Ironic), never
  below 0. The root disk is ``properties.root_device.name`` when given, else the smallest disk
  of at least 4 GiB, else the largest;
- a port for every interface MAC address no port has yet (not PXE-enabled: the boot service
  keeps answering only the ports an operator enabled);
- then the inspection rules (API 1.96, services/drivers/inspect/rules.py), which may change
  the node, its ports and the plugin data;
- the inventory itself and the plugin data, one row per node
  (``GET /v1/nodes/{node}/inventory``).

Reading the inventory (its check, properties and MACs) is ``services.common.inventory``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from services.common.inventory import (  # noqa: F401 (the inspect interface's names)
    GIB,
    MIB,
    MalformedInventory,
    check,
    macs_of,
    properties_from,
    root_disk,
)
from services.common.models import NodeInventory, Port
from services.drivers.deploy.image import target_disk
from services.drivers.inspect import rules

if TYPE_CHECKING:
    from services.conductor.task import Task

def _store(task: Task, inventory: dict[str, Any], plugin_data: dict[str, Any]) -> None:
    row = task.session.scalar(select(NodeInventory)
                              .where(NodeInventory.node_id == task.node.id))
    if row is None:
        task.session.add(NodeInventory(node_id=task.node.id, inventory_data=inventory,
                                       plugin_data=plugin_data))
    else:
        row.inventory_data = inventory
        row.plugin_data = plugin_data


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
    created, taken = _add_ports(task, macs_of(inventory))
    task.session.flush()  # the rules may change the new ports
    plugin_data: dict[str, Any] = {}
    applied = rules.apply_rules(task, inventory, plugin_data)
    _store(task, inventory, plugin_data)
    task.record("introspection",
                f"Inspection found {found['cpus']} {found['cpu_arch']} CPU(s), "
                f"{found['memory_mb']} MiB of memory, {found['local_gb']} GiB local disk; "
                f"ports created: {', '.join(created) or 'none'}"
                f"{'; inspection rules applied: ' + ', '.join(applied) if applied else ''}.")
    if taken:
        task.record("introspection", f"MAC address(es) {', '.join(taken)} belong to ports of "
                                     f"other nodes: no port created for them.",
                    severity="WARNING")
