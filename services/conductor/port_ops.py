"""The conductor's writes to ports and port groups, under the lock of their node.

Ironic's rules for port groups (ironic/conductor/manager.py, drivers/modules/network/common.py),
with its error texts: a port in a group whose ``standalone_ports_supported`` is false may not be
PXE-enabled nor carry a VIF, a group with members does not move to another node and is not
deleted, and a group's ports are on its node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.common import states
from services.common.exceptions import (
    Conflict,
    Invalid,
    NodeNotFound,
    NotFound,
    conflict_from_integrity,
)
from services.common.lookups import node_uuid_of_port, node_uuid_of_portgroup
from services.common.models import Node, Port, Portgroup
from services.common.optimistic import check_unchanged
from services.drivers.network.vifs import attached_vif

if TYPE_CHECKING:
    from services.common.db import Database
    from services.conductor.runner import TaskRunner
    from services.conductor.task import Task

# Where a port group may move to another node (or a node in maintenance), as in Ironic.
PORTGROUP_MOVE_STATES = (states.S.ENROLL.value, states.S.INSPECTING.value,
                         states.S.INSPECTWAIT.value, states.S.MANAGEABLE.value)


def _standalone_uses(port: Port, tense: str, article: str) -> list[str]:
    """What makes ``port`` a standalone port, in the words of Ironic's two messages."""
    uses = [f"'pxe_enabled' {tense} set to True"] if port.pxe_enabled else []
    if vif := attached_vif(port):
        uses.append(f"VIF {vif} is attached to {article} port")
    return uses


def check_port_in_group(port: Port, group: Portgroup | None) -> None:
    """Conflict if ``port`` may not be a member of ``group`` (Ironic's port_changed)."""
    if group is None or group.standalone_ports_supported:
        return
    if reason := _standalone_uses(port, "was", "the"):
        raise Conflict(f"Port group {group.uuid} doesn't support standalone ports. This port "
                       f"{port.uuid} cannot be  a member of that port group because of: "
                       f"{', '.join(reason)}")


class PortOperations:
    """Mixed into ConductorManager: its ``db`` and ``runner`` locks."""

    db: Database
    runner: TaskRunner

    def update_port(self, port_uuid: str, values: dict[str, Any],
                    node_uuid: str | None = None, expected: dict[str, Any] | None = None
                    ) -> None:
        """Write checked port values under the lock of the port's node; maybe move the port.
        ``expected``: as for `update_node`."""
        try:
            with self.runner.locked(node_uuid_of_port(self.db, port_uuid)) as task:
                port = task.session.scalar(select(Port).where(Port.uuid == port_uuid))
                if port is None:
                    raise NotFound(f"Port {port_uuid} could not be found.")
                check_unchanged(port, expected, f"Port {port_uuid}")
                update_row(task, port, node_uuid, values)
                group = task.session.get(Portgroup, port.portgroup_id) if (
                    port.portgroup_id is not None) else None
                if group is not None and group.node_id != port.node_id:
                    raise Invalid("Port can not be added to a portgroup belonging to a "
                                  "different node.")
                check_port_in_group(port, group)
                task.session.flush()
        except IntegrityError as exc:
            raise conflict_from_integrity(exc, values) from None

    def destroy_port(self, port_uuid: str) -> None:
        with self.runner.locked(node_uuid_of_port(self.db, port_uuid)) as task:
            port = task.session.scalar(select(Port).where(Port.uuid == port_uuid))
            if port is None:
                return
            vif = attached_vif(port)
            if vif and not task.node.maintenance:  # as Ironic: detach it first
                raise Conflict(f"Cannot delete the port {port.uuid} as it is bound to VIF "
                               f"{vif} for use.")
            task.session.delete(port)

    def update_portgroup(self, portgroup_uuid: str, values: dict[str, Any],
                         node_uuid: str | None = None,
                         expected: dict[str, Any] | None = None) -> None:
        """Write checked port group values under its node's lock (and maybe move it)."""
        try:
            with self.runner.locked(node_uuid_of_portgroup(self.db, portgroup_uuid)) as task:
                group = task.session.scalar(
                    select(Portgroup).where(Portgroup.uuid == portgroup_uuid))
                if group is None:
                    raise NotFound(f"Portgroup {portgroup_uuid} could not be found.")
                check_unchanged(group, expected, f"Portgroup {portgroup_uuid}")
                members = list(task.session.scalars(
                    select(Port).where(Port.portgroup_id == group.id)))
                if node_uuid is not None and node_uuid != task.node.uuid:
                    self._move_portgroup(group, members, node_uuid, task.session)
                was_standalone = group.standalone_ports_supported
                for field, value in values.items():
                    setattr(group, field, value)
                if was_standalone and not group.standalone_ports_supported:
                    for port in members:
                        if reason := _standalone_uses(port, "is", "this"):
                            raise Conflict(
                                "standalone_ports_supported can not be set to False, because "
                                f"the port group {group.uuid} contains port with "
                                f"{', '.join(reason)}")
                task.session.flush()
        except IntegrityError as exc:
            raise conflict_from_integrity(exc, values, "portgroup") from None

    @staticmethod
    def _move_portgroup(group: Portgroup, members: list[Port], node_uuid: str,
                        session: Any) -> None:
        """Move ``group`` to node ``node_uuid``, whose state Ironic checks (not locked here:
        only the group's row changes)."""
        node = session.scalar(select(Node).where(Node.uuid == node_uuid))
        if node is None:
            raise NodeNotFound(node_uuid)
        if node.provision_state not in PORTGROUP_MOVE_STATES and not node.maintenance:
            raise Conflict(
                f"Portgroup {group.uuid} can not be associated to node {node_uuid} unless the "
                f"node is in a {', '.join(PORTGROUP_MOVE_STATES)} state or in "
                f"maintenance mode. Current state is '{node.provision_state}'.")
        if members:
            raise Invalid(f"Portgroup {group.uuid} can not be associated with node {node_uuid} "
                          "because there are ports associated with this portgroup.")
        group.node_id = node.id

    def destroy_portgroup(self, portgroup_uuid: str) -> None:
        with self.runner.locked(node_uuid_of_portgroup(self.db, portgroup_uuid)) as task:
            group = task.session.scalar(select(Portgroup).where(Portgroup.uuid == portgroup_uuid))
            if group is None:
                return
            if task.session.scalar(select(Port.id).where(Port.portgroup_id == group.id)):
                raise Invalid("Cannot complete the requested action because portgroup "
                              f"{group.uuid} contains ports.")
            task.session.delete(group)


def update_row(task: Task, row: Any, node_uuid: str | None, values: dict[str, Any]) -> None:
    """Set ``values`` on a node's ``row`` (a port, a volume connector or target) and move it
    to the node ``node_uuid`` when that is another node (NodeNotFound when there is none)."""
    if node_uuid is not None and node_uuid != task.node.uuid:
        new_node = task.session.scalar(select(Node.id).where(Node.uuid == node_uuid))
        if new_node is None:
            raise NodeNotFound(node_uuid)
        row.node_id = new_node
    for field, value in values.items():
        setattr(row, field, value)
