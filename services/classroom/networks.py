"""The networks of a room's PCs: its idle VLAN and its class VLAN (docs/classroom-api.md).

A PC of a room rests and is provisioned (ramdisk, cleaning) on the room's **idle VLAN** (the
network with the boot service, "idle/provisioning" in CLASSROOM.md) and boots its OS on the
room's **class VLAN**. The ``vlan`` network interface asks for them on every move, so a PC
added to a room or taken out of one follows its new room on its next provisioning action.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import states
from services.common.classroom_models import Room, RoomPC
from services.common.models import Node

VLAN_INTERFACE = "vlan"  # the network interface that moves a PC's switch ports
PORT_VLAN_KEY = "access_vlan"  # in a port's internal_info: the VLAN Enclume last put it in


@dataclass(frozen=True)
class RoomVlans:
    room: str  # the room's name, for the node's history
    idle: int | None
    class_: int | None


def room_vlans(session: Session, node_id: int) -> RoomVlans | None:
    """The VLANs of the room the node is a PC of, or None when it is in no room."""
    row = session.execute(
        select(Room.name, Room.idle_vlan, Room.class_vlan)
        .join(RoomPC, RoomPC.room_id == Room.id)
        .where(RoomPC.node_id == node_id)).first()
    return None if row is None else RoomVlans(row.name, row.idle_vlan, row.class_vlan)


def class_vlan_pcs(room: Room) -> list[str]:
    """The node UUIDs of the room's PCs on its class VLAN, in the room's order: those of the
    ``vlan`` network interface that run the OS a deploy wrote (``active``: a deploy ends with
    the ports on the class VLAN) and whose ports have not left it since (a log-out)."""
    return [pc.node.uuid for pc in room.pcs
            if pc.node.network_interface == VLAN_INTERFACE
            and pc.node.provision_state == states.S.ACTIVE.value
            and not _logged_out(pc.node, room.idle_vlan)]


def _logged_out(node: Node, idle_vlan: int | None) -> bool:
    """Whether the node's ports were all last put in the room's idle VLAN (as recorded): a
    log-out moved it. A PC still on a class VLAN the room no longer names (staff changed it,
    or the PC came from another room) is not logged out; without a record, or without an idle
    VLAN of the room, it cannot be told: False."""
    recorded = {(port.internal_info or {}).get(PORT_VLAN_KEY) for port in node.ports}
    return idle_vlan is not None and recorded == {idle_vlan}
