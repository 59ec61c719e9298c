"""A user logging in at a PC's boot prompt: which PC asks (its agent's token), which class is
on in its room, and what the user may choose there.

A student may start fresh from the session's image or resume one of *their own* states made on
that image version; a teacher of the room (or staff) may also choose maintenance. The
password is checked by the caller (the one identity source); this module decides the rest.

Who is logged in at a PC is ``driver_internal_info["pc_login"]`` (``record_login`` when the
user's choice is accepted, ``clear_login`` when the PC is restored for the next class or
powered off, ``end_login`` at a class's end that does neither): the user, the action, the
state resumed and the image version, and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.classroom.access import room_visible_to
from services.classroom.state_capture import logged_in
from services.common.agent_checks import agent_token_matches
from services.common.classroom_models import ClassSession, Occurrence, Room, RoomPC
from services.common.exceptions import Conflict, EnclumeError, Forbidden, NotFound
from services.common.identity import Identity
from services.common.models import Node
from services.common.node_fields import AGENT_TOKEN
from services.common.state_models import StudentState
from services.common.validation import is_uuid

# An occurrence in these states is the class on in its room at its planned time.
CURRENT_STATES = ("planned", "claimed", "running")
PC_LOGIN = "pc_login"  # in a node's driver_internal_info


class AgentRefused(EnclumeError):
    """The caller is not the agent of that PC (401 without a token, 403 with a wrong one)."""


@dataclass(frozen=True)
class Place:
    node: Node
    room: Room
    class_session: ClassSession | None


def place_of(session: Session, node_ident: Any, token: str | None, now: datetime) -> Place:
    """The PC whose agent holds ``token``, its room and the class on there now."""
    if not token:
        raise AgentRefused("The agent token is required (X-Agent-Token).", 401)
    node = session.scalar(select(Node).where(Node.uuid == node_ident.lower())) \
        if is_uuid(node_ident) else None
    if node is None:
        raise NotFound(f"Node {node_ident} could not be found.")
    if not agent_token_matches((node.driver_internal_info or {}).get(AGENT_TOKEN), token):
        raise AgentRefused(f"Invalid agent token for node {node.uuid}.", 403)
    room = session.scalar(select(Room).join(RoomPC).where(RoomPC.node_id == node.id))
    if room is None:
        raise Conflict(f"Node {node.uuid} is in no room: there is no class to log in to.")
    current = session.scalar(
        select(ClassSession).join(Occurrence).where(
            ClassSession.room_id == room.id, Occurrence.state.in_(CURRENT_STATES),
            Occurrence.planned_start <= now, Occurrence.planned_end > now)
        .order_by(Occurrence.planned_start.desc()).limit(1))
    return Place(node, room, current)


def _teaches_room(session: Session, identity: Identity, room: Room) -> bool:
    return session.scalar(select(Room.id).where(Room.id == room.id,
                                                room_visible_to(identity))) is not None


def choices(session: Session, identity: Identity, place: Place) -> list[dict[str, Any]]:
    """What ``identity`` may do at the PC: fresh, resume (their states of the session's image
    version, most recently used first), maintenance (teachers of the room, staff)."""
    teacher = _teaches_room(session, identity, place.room)
    student = "student" in identity.roles
    if not (teacher or student):
        raise Forbidden(f"{identity.user} may not log in at the PCs of room {place.room.name}.")
    if not teacher and identity.rooms and place.room.name not in identity.rooms:
        raise Forbidden(f"{identity.user} is not a student of room {place.room.name}.")
    found: list[dict[str, Any]] = []
    if place.class_session is not None:
        found.append({"action": "fresh"})
        states = session.scalars(select(StudentState).where(
            StudentState.owner == identity.user,
            StudentState.image_version_id == place.class_session.image_version_id)
            .order_by(StudentState.last_used_at.desc())).all()
        found.extend({"action": "resume", "state": state} for state in states)
    elif not teacher:
        raise Conflict(f"No class is on in room {place.room.name} now: ask your teacher.")
    if teacher:
        found.append({"action": "maintenance"})
    return found


def record_login(node: Node, identity: Identity, answer: dict[str, Any], now: datetime) -> None:
    """Remember who logged in at ``node`` and what they chose (the choice's ``answer``)."""
    state = answer.get("state")
    node.driver_internal_info = {**(node.driver_internal_info or {}), PC_LOGIN: {
        "user": identity.user, "action": answer["action"],
        "state": state.get("uuid") if isinstance(state, dict) else None,
        "image_version": answer.get("image_version"), "at": now.isoformat()}}


def clear_login(node: Node) -> None:
    """Nobody is logged in at ``node`` any more."""
    info = node.driver_internal_info or {}
    if PC_LOGIN in info:
        node.driver_internal_info = {k: v for k, v in info.items() if k != PC_LOGIN}


def end_login(node: Node, now: datetime) -> None:
    """The class ended without a restore or a power-off: nobody is logged in at ``node`` for
    the class any more. A login with work to save (fresh, resume) is kept, marked ``ended_at``,
    so that the PC's next restore or power-off saves that work first, as it would have; one
    with nothing to save (maintenance) is cleared as a restore clears it."""
    login = login_of(node)
    if login is None:
        return
    if logged_in(node.driver_internal_info) is None:
        clear_login(node)
        return
    node.driver_internal_info = {**(node.driver_internal_info or {}),
                                 PC_LOGIN: {**login, "ended_at": now.isoformat()}}


def ended_with_unsaved_work(node: Node) -> dict[str, Any] | None:
    """The login ``end_login`` kept: its class over, its student's work still on the PC until
    the PC's next restore or power-off saves it; None when there is none."""
    login = logged_in(node.driver_internal_info)
    return login if login is not None and login.get("ended_at") else None


def login_of(node: Node) -> dict[str, Any] | None:
    found = (node.driver_internal_info or {}).get(PC_LOGIN)
    return found if isinstance(found, dict) else None
