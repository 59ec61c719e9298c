"""Rooms: their PCs (nodes, each in at most one room), teachers, allowed images, VLANs."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from services.classroom import fields
from services.classroom.access import require_room_change
from services.classroom.images import find_image
from services.classroom.times import zone
from services.common import validation
from services.common.classroom_models import (
    ClassSession,
    Room,
    RoomImage,
    RoomPC,
    RoomTeacher,
)
from services.common.exceptions import Conflict, Invalid, NotFound
from services.common.identity import Identity
from services.common.lookups import by_uuid_or_name
from services.common.models import Node

ROOM_FIELDS = frozenset({"name", "description", "time_zone", "idle_vlan", "class_vlan",
                         "subnet", "wol_broadcast", "transfer", "allowed_images",
                         "default_image", "pcs", "teachers", "layout",
                         "pc_logins", "login_language"})
UPDATABLE = ROOM_FIELDS - {"pcs", "teachers"}


def _names(field: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"Invalid {field}: expected a list of names.")
    return list(dict.fromkeys(value))


def _node(session: Session, ident: str) -> Node:
    validation.node_ident("pcs", ident)
    node = session.scalar(select(Node).where(by_uuid_or_name(Node, ident)))
    if node is None:
        raise Invalid(f"PC {ident} is not a known node.")
    return node


def _set_images(session: Session, room: Room, values: dict[str, Any]) -> None:
    if "allowed_images" in values:
        images = [find_image(session, n) for n in _names("allowed_images",
                                                         values["allowed_images"])]
        session.execute(delete(RoomImage).where(RoomImage.room_id == room.id))
        session.add_all(RoomImage(room_id=room.id, image_id=i.id) for i in images)
        session.flush()
        session.expire(room, ["allowed_images"])
    if "default_image" in values:
        ident = values["default_image"]
        room.default_image_id = None if ident is None else find_image(session, ident).id
    allowed = {a.image_id for a in room.allowed_images}
    if room.default_image_id is not None and room.default_image_id not in allowed:
        raise Invalid("The default image must be one of the room's allowed images.")


def _apply(session: Session, room: Room, values: dict[str, Any]) -> None:
    if "name" in values:
        room.name = validation.name(values["name"], "room")
    if "description" in values:
        room.description = (None if values["description"] is None
                            else validation.text("description", values["description"]))
    if "time_zone" in values:
        room.time_zone = zone(values["time_zone"]).key
    for vlan in ("idle_vlan", "class_vlan"):
        if vlan in values:
            setattr(room, vlan, fields.vlan(vlan, values[vlan]))
    if "transfer" in values:
        room.transfer = fields.transfer(values["transfer"])
    if "pc_logins" in values:
        room.pc_logins = fields.optional_flag("pc_logins", values["pc_logins"])
    if "login_language" in values:
        room.login_language = fields.login_language(values["login_language"])
    if "layout" in values:
        room.layout_rows, room.layout_columns = fields.layout(values["layout"]) or (None, None)
    if "subnet" in values or "wol_broadcast" in values:
        network = fields.subnet(values.get("subnet", room.subnet))
        room.subnet = None if network is None else str(network)
        room.wol_broadcast = fields.wol_broadcast(
            values.get("wol_broadcast", room.wol_broadcast), network)


def create_room(session: Session, body: Any) -> Room:
    values = fields.known_keys("room", body, ROOM_FIELDS)
    for required in ("name", "time_zone"):
        if required not in values:
            raise Invalid(f"Mandatory field missing: {required}.")
    room = Room()
    _apply(session, room, values)
    if session.scalar(select(Room.id).where(Room.name == room.name)) is not None:
        raise Conflict(f"A room named {room.name} already exists.")
    session.add(room)
    session.flush()
    _set_images(session, room, values)
    add_pcs(session, room, values.get("pcs", []))
    add_teachers(session, room, values.get("teachers", []))
    return room


def update_room(session: Session, identity: Identity, room: Room, body: Any) -> Room:
    """A change of ``room`` by ``identity`` (the API's PATCH, the room page's forms): staff
    change anything, the room's teachers what ``require_room_change`` lets them."""
    require_room_change(identity, body if isinstance(body, dict) else {})
    values = fields.known_keys("room update", body, UPDATABLE)
    if "time_zone" in values and zone(values["time_zone"]).key != room.time_zone and (
            session.scalar(select(ClassSession.id).where(ClassSession.room_id == room.id))):
        raise Conflict(f"Room {room.name} has sessions, planned in its time zone: delete them "
                       "before changing the zone.")
    _apply(session, room, values)
    if "name" in values and session.scalar(select(Room.id).where(
            Room.name == room.name, Room.id != room.id)) is not None:
        raise Conflict(f"A room named {room.name} already exists.")
    _set_images(session, room, values)
    session.flush()
    return room


def add_pcs(session: Session, room: Room, idents: Any) -> None:
    """Add PCs (node UUIDs or names); 409 naming the other room if one is already in one."""
    nodes = [_node(session, ident) for ident in _names("pcs", idents)]
    rows = session.execute(select(RoomPC.node_id, Room.name).join(
        Room, Room.id == RoomPC.room_id).where(RoomPC.node_id.in_([n.id for n in nodes])))
    placed = {node_id: room_name for node_id, room_name in rows}
    for node in nodes:
        other = placed.get(node.id)
        if other is not None and other != room.name:
            raise Conflict(f"PC {node.name or node.uuid} is already in room {other}: a PC is "
                           "in at most one room.")
    session.add_all(RoomPC(room_id=room.id, node_id=n.id) for n in nodes if n.id not in placed)
    session.flush()
    session.expire(room, ["pcs"])


def remove_pc(session: Session, room: Room, ident: str) -> None:
    node = _node(session, ident)
    if session.execute(delete(RoomPC).where(RoomPC.room_id == room.id,
                                            RoomPC.node_id == node.id)).rowcount == 0:
        raise NotFound(f"PC {ident} is not in room {room.name}.")
    session.expire(room, ["pcs"])


def add_teachers(session: Session, room: Room, names: Any) -> None:
    present = {t.user_name for t in room.teachers}
    for user in _names("teachers", names):
        if fields.user_name(user) not in present:
            session.add(RoomTeacher(room_id=room.id, user_name=user))
    session.flush()
    session.expire(room, ["teachers"])


def remove_teacher(session: Session, room: Room, user: str) -> None:
    if session.execute(delete(RoomTeacher).where(RoomTeacher.room_id == room.id,
                                                 RoomTeacher.user_name == user)).rowcount == 0:
        raise NotFound(f"{user} is not a teacher of room {room.name}.")
    session.expire(room, ["teachers"])


def lock(session: Session, ident: str | ColumnElement[bool]) -> None:
    """Serialise writers of one room's timetable: a no-op UPDATE of the room's row, as the
    transaction's first statement (a row lock on PostgreSQL; on SQLite the write lock, taken
    before anything is read, so a concurrent writer waits instead of failing), so that two
    overlapping sessions cannot both pass the overlap check. ``ident``: the room's name or
    UUID, or a condition on ``Room`` (the room of a session being changed)."""
    where = by_uuid_or_name(Room, ident) if isinstance(ident, str) else ident
    session.execute(Room.__table__.update().where(where).values(updated_at=Room.updated_at))


def wol_address(session: Session, node_id: int) -> str | None:
    """Where the magic packets of a room's PC go: the room's wol_broadcast, else its subnet's
    broadcast address; None for a PC in no room or in a room without a subnet."""
    row = session.execute(select(Room.subnet, Room.wol_broadcast).join(
        RoomPC, RoomPC.room_id == Room.id).where(RoomPC.node_id == node_id)).first()
    if row is None or row.subnet is None:
        return None
    return row.wol_broadcast or str(ipaddress.IPv4Network(row.subnet).broadcast_address)
