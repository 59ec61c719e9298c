"""VIFs on a node's ports, as Ironic's ``VIFPortIDMixin``/``NeutronVIFPortIDMixin`` keep them.

A VIF (a virtual interface: Neutron's port ID for Nova, any string for Enclume) is attached to
one of the node's ports by writing its ID to the port's ``internal_info.tenant_vif_port_id``.
The port is chosen as Ironic chooses it (ironic/drivers/modules/network/common.py): a port with
no VIF yet whose ``physical_network`` is None or one of the VIF's physical networks, preferring
a physical network that matches, then PXE-enabled ports. Ironic reads the VIF's physical
networks from Neutron; Enclume has no Neutron, so a VIF may name them itself
(``physical_network``: a string, or ``physical_networks``: a list). Enclume has no port groups:
``portgroup_uuid`` hints are refused.

The error texts are Ironic's (clients match on them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from services.common.exceptions import Conflict, Invalid

if TYPE_CHECKING:
    from services.common.models import Port
    from services.conductor.task import Task

TENANT_VIF_KEY = "tenant_vif_port_id"  # in a port's internal_info, as Ironic's
LEGACY_VIF_KEY = "vif_port_id"  # in a port's extra: Ironic drops it on detach


class VifAlreadyAttached(Conflict):
    def __init__(self, vif_id: str, port_uuid: str) -> None:
        super().__init__(f"Unable to attach VIF because VIF {vif_id} is already attached to "
                         f"Ironic Port {port_uuid}")


class NoFreePhysicalPorts(Invalid):
    def __init__(self, vif_id: str) -> None:
        super().__init__(f"Unable to attach VIF {vif_id}, not enough free physical ports.")


class VifNotAttached(Invalid):
    def __init__(self, vif_id: str, node_uuid: str) -> None:
        super().__init__(f"Unable to detach VIF {vif_id} from node {node_uuid} because it is "
                         f"not attached to it.")


def attached_vif(port: Port) -> str | None:
    vif: str | None = (port.internal_info or {}).get(TENANT_VIF_KEY)
    return vif


def vif_ports(ports: Iterable[Port]) -> list[Port]:
    """The ports that carry a tenant VIF."""
    return [port for port in ports if attached_vif(port)]


def list_vifs(task: Task) -> list[dict[str, Any]]:
    return [{"id": vif} for port in task.node.ports if (vif := attached_vif(port))]


def _physnets(vif_info: dict[str, Any]) -> set[str]:
    named = vif_info.get("physical_networks", vif_info.get("physical_network"))
    if named is None:
        return set()
    values = [named] if isinstance(named, str) else named
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise Invalid("Invalid VIF: physical_network must be a string, physical_networks a "
                      "list of strings.")
    return set(values)


def free_port(ports: Iterable[Port], vif_id: str, vif_info: dict[str, Any],
              usable: Callable[[Port], bool] = lambda _port: True) -> Port:
    """The port ``vif_id`` goes to; VifAlreadyAttached, NoFreePhysicalPorts."""
    if vif_info.get("portgroup_uuid") is not None:
        raise Invalid("Port groups are not supported: a VIF attaches to a port "
                      "(portgroup_uuid must not be given).")
    wanted_port = vif_info.get("port_uuid")
    physnets = _physnets(vif_info)
    free = []
    for port in ports:
        if (wanted_port and port.uuid != wanted_port) or not usable(port):
            continue
        current = attached_vif(port)
        if current == vif_id:
            raise VifAlreadyAttached(vif_id, port.uuid)
        if current is not None:
            continue
        if physnets and port.physical_network is not None and (
            port.physical_network not in physnets
        ):
            continue
        free.append(port)
    if not free:
        raise NoFreePhysicalPorts(vif_id)
    # Ironic's order: a matching physical network first, then PXE-enabled ports; the address
    # breaks ties so that the choice does not depend on the database's row order.
    free.sort(key=lambda p: p.address)
    free.sort(key=lambda p: (p.physical_network in physnets, p.pxe_enabled), reverse=True)
    return free[0]


def attach(task: Task, vif_info: dict[str, Any],
           usable: Callable[[Port], bool] = lambda _port: True) -> Port:
    """Record the VIF ``vif_info["id"]`` on a free port of the node; the port."""
    vif_id = str(vif_info["id"])
    # A VIF is on one port of all the node's: attached anywhere already is a conflict.
    for port in task.node.ports:
        if attached_vif(port) == vif_id:
            raise VifAlreadyAttached(vif_id, port.uuid)
    port = free_port(task.node.ports, vif_id, vif_info, usable)
    port.internal_info = {**(port.internal_info or {}), TENANT_VIF_KEY: vif_id}
    task.record("network", f"VIF {vif_id} attached to port {port.uuid} ({port.address}).")
    return port


def detach(task: Task, vif_id: str) -> Port:
    """Forget the VIF ``vif_id`` on the port that has it; VifNotAttached if none has."""
    for port in task.node.ports:
        if attached_vif(port) == vif_id:
            info = dict(port.internal_info)
            info.pop(TENANT_VIF_KEY, None)
            port.internal_info = info
            if LEGACY_VIF_KEY in (port.extra or {}):
                port.extra = {k: v for k, v in port.extra.items() if k != LEGACY_VIF_KEY}
            task.record("network", f"VIF {vif_id} detached from port {port.uuid} "
                                   f"({port.address}).")
            return port
    raise VifNotAttached(vif_id, task.node.uuid)
