"""VIFs on a node's ports, as Ironic's ``VIFPortIDMixin``/``NeutronVIFPortIDMixin`` keep them.

A VIF (a virtual interface: Neutron's port ID for Nova, any string for Enclume) is attached to
one of the node's ports by writing its ID to the port's ``internal_info.tenant_vif_port_id``.
The port is chosen as Ironic chooses it (ironic/drivers/modules/network/common.py): a port with
no VIF yet whose ``physical_network`` is None or one of the VIF's physical networks, preferring
a physical network that matches, then PXE-enabled ports. Ironic reads the VIF's physical
networks from Neutron; Enclume has no Neutron, so a VIF may name them itself
(``physical_network``: a string, or ``physical_networks``: a list). A VIF goes to a port group
(its ``internal_info``) as in Ironic when the group has a free member port: port groups are
preferred to single ports, and a port in a group takes a VIF itself only when its group cannot.

The error texts are Ironic's (clients match on them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from services.common.exceptions import Conflict, Invalid

if TYPE_CHECKING:
    from services.common.models import Port, Portgroup
    from services.conductor.task import Task

    PortLike = Port | Portgroup

TENANT_VIF_KEY = "tenant_vif_port_id"  # in a port's internal_info, as Ironic's
LEGACY_VIF_KEY = "vif_port_id"  # in a port's extra: Ironic drops it on detach


class VifAlreadyAttached(Conflict):
    def __init__(self, vif_id: str, port_uuid: str, kind: str = "Port") -> None:
        super().__init__(f"Unable to attach VIF because VIF {vif_id} is already attached to "
                         f"Ironic {kind} {port_uuid}")


class NoFreePhysicalPorts(Invalid):
    def __init__(self, vif_id: str) -> None:
        super().__init__(f"Unable to attach VIF {vif_id}, not enough free physical ports.")


class VifNotAttached(Invalid):
    def __init__(self, vif_id: str, node_uuid: str) -> None:
        super().__init__(f"Unable to detach VIF {vif_id} from node {node_uuid} because it is "
                         f"not attached to it.")


def attached_vif(port: PortLike) -> str | None:
    vif: str | None = (port.internal_info or {}).get(TENANT_VIF_KEY)
    return vif


def vif_ports(ports: Iterable[Port]) -> list[Port]:
    """The ports that carry a tenant VIF, themselves or through their port group."""
    return [port for port in ports
            if attached_vif(port) or (port.portgroup is not None and attached_vif(port.portgroup))]


def list_vifs(task: Task) -> list[dict[str, Any]]:
    holders: list[PortLike] = [*task.node.ports, *task.node.portgroups]
    return [{"id": vif} for holder in holders if (vif := attached_vif(holder))]


def _kind(holder: PortLike) -> str:
    return "Port" if hasattr(holder, "pxe_enabled") else "Portgroup"


def _physnets(vif_info: dict[str, Any]) -> set[str]:
    named = vif_info.get("physical_networks", vif_info.get("physical_network"))
    if named is None:
        return set()
    values = [named] if isinstance(named, str) else named
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise Invalid("Invalid VIF: physical_network must be a string, physical_networks a "
                      "list of strings.")
    return set(values)


def _free_candidates(ports: Iterable[Port], portgroups: Iterable[Portgroup], vif_id: str,
                     vif_info: dict[str, Any], physnets: set[str],
                     usable: Callable[[Port], bool]) -> list[PortLike]:
    """Ironic's ``_get_free_portgroups_and_ports``: free single ports, and port groups with a
    free member (or that group's free members, when a member already carries another VIF)."""
    wanted_port = vif_info.get("port_uuid")
    wanted_group = None if wanted_port else vif_info.get("portgroup_uuid")
    free: list[PortLike] = []
    by_group: dict[int | None, list[Port]] = defaultdict(list)
    groups_with_busy_members: set[int | None] = set()
    for port in ports:
        if (wanted_port and port.uuid != wanted_port) or not usable(port):
            continue
        current = attached_vif(port)
        if current == vif_id:
            raise VifAlreadyAttached(vif_id, port.uuid)
        if current is not None:
            groups_with_busy_members.add(port.portgroup_id)
            continue
        if physnets and port.physical_network is not None and (
            port.physical_network not in physnets
        ):
            continue
        if port.portgroup_id is None and not wanted_group:
            free.append(port)
        else:
            by_group[port.portgroup_id].append(port)
    if wanted_port:
        return free + [p for members in by_group.values() for p in members]
    for group in portgroups:
        if wanted_group and group.uuid != wanted_group:
            continue
        current = attached_vif(group)
        if current == vif_id:
            raise VifAlreadyAttached(vif_id, group.uuid, "Portgroup")
        if current is not None:
            continue
        if group.id in groups_with_busy_members:
            if not wanted_group:
                free.extend(by_group[group.id])
        elif by_group[group.id]:
            free.append(group)
    return free


def free_port(ports: Iterable[Port], vif_id: str, vif_info: dict[str, Any],
              usable: Callable[[Port], bool] = lambda _port: True,
              portgroups: Iterable[Portgroup] = ()) -> PortLike:
    """The port or port group ``vif_id`` goes to; VifAlreadyAttached, NoFreePhysicalPorts."""
    physnets = _physnets(vif_info)
    ports = list(ports)
    free = _free_candidates(ports, portgroups, vif_id, vif_info, physnets, usable)
    if not free:
        raise NoFreePhysicalPorts(vif_id)

    def physical_network(holder: PortLike) -> str | None:
        if _kind(holder) == "Port":
            return holder.physical_network  # type: ignore[union-attr]
        members = [p.physical_network for p in ports if p.portgroup_id == holder.id]
        return members[0] if members else None

    # Ironic's order: a matching physical network first, then port groups, then PXE-enabled
    # ports; the address (the UUID for a group without one) breaks ties so that the choice does
    # not depend on the database's row order.
    free.sort(key=lambda p: p.address or p.uuid)
    free.sort(key=lambda p: (physical_network(p) in physnets, _kind(p) == "Portgroup",
                             getattr(p, "pxe_enabled", True)), reverse=True)
    return free[0]


def attach(task: Task, vif_info: dict[str, Any],
           usable: Callable[[Port], bool] = lambda _port: True) -> PortLike:
    """Record the VIF ``vif_info["id"]`` on a free port or port group of the node; it."""
    vif_id = str(vif_info["id"])
    # A VIF is on one port of all the node's: attached anywhere already is a conflict.
    holders: list[PortLike] = [*task.node.ports, *task.node.portgroups]
    for holder in holders:
        if attached_vif(holder) == vif_id:
            raise VifAlreadyAttached(vif_id, holder.uuid, _kind(holder))
    port = free_port(task.node.ports, vif_id, vif_info, usable, task.node.portgroups)
    port.internal_info = {**(port.internal_info or {}), TENANT_VIF_KEY: vif_id}
    task.record("network", f"VIF {vif_id} attached to {_kind(port).lower()} {port.uuid} "
                           f"({port.address}).")
    return port


def detach(task: Task, vif_id: str) -> PortLike:
    """Forget the VIF ``vif_id`` on the port (group) that has it; VifNotAttached if none has."""
    holders: list[PortLike] = [*task.node.ports, *task.node.portgroups]
    for port in holders:
        if attached_vif(port) == vif_id:
            info = dict(port.internal_info)
            info.pop(TENANT_VIF_KEY, None)
            port.internal_info = info
            if LEGACY_VIF_KEY in (port.extra or {}):
                port.extra = {k: v for k, v in port.extra.items() if k != LEGACY_VIF_KEY}
            task.record("network", f"VIF {vif_id} detached from {_kind(port).lower()} "
                                   f"{port.uuid} ({port.address}).")
            return port
    raise VifNotAttached(vif_id, task.node.uuid)
