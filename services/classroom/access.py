"""Who sees which room: staff (admin, operator) every room, a teacher their rooms only.

A teacher's rooms are those whose teacher list names them, and those the identity source gives
them (a users file's ``rooms``). A room a caller cannot see does not exist for them: lookups
answer 404, never 403, so that room names do not leak. Students and service accounts have no
classroom resources yet (403).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, exists, false, or_, select
from sqlalchemy.orm import Session

from services.common.classroom_models import Room, RoomTeacher
from services.common.exceptions import Forbidden, NotFound
from services.common.identity import Identity
from services.common.lookups import by_uuid_or_name
from services.common.validation import is_uuid


def require_classroom_user(identity: Identity) -> None:
    if not (identity.is_staff or "teacher" in identity.roles):
        raise Forbidden("Access was denied: the classroom API is for the admin, operator and "
                        "teacher roles.")


def require_staff(identity: Identity, action: str) -> None:
    if not identity.is_staff:
        raise Forbidden(f"Access was denied: only an admin or an operator may {action}.")


# What a room's teachers may change of it (the room page's forms); the rest is staff's.
TEACHER_ROOM_FIELDS = frozenset({"layout", "pc_logins", "login_language"})


def require_room_change(identity: Identity, fields: Any) -> None:
    """Staff change anything of a room they see; its teachers its layout and its logins at
    the PCs (the room page's forms), nothing else (Forbidden, naming the fields)."""
    if identity.is_staff:
        return
    others = sorted(str(name) for name in fields if name not in TEACHER_ROOM_FIELDS)
    if others or not fields:
        allowed = ", ".join(sorted(TEACHER_ROOM_FIELDS))
        raise Forbidden(f"Access was denied: only an admin or an operator may change a room's "
                        f"{', '.join(others) or 'settings'}; a teacher of the room may change "
                        f"its {allowed}.")


def room_visible_to(identity: Identity) -> ColumnElement[bool]:
    """A condition on ``Room``: the rooms ``identity`` may see."""
    if identity.is_staff:
        return Room.id.is_not(None)
    if "teacher" not in identity.roles:
        return false()
    listed = exists().where(RoomTeacher.room_id == Room.id,
                            RoomTeacher.user_name == identity.user)
    return or_(listed, Room.name.in_(sorted(identity.rooms)))


def visible_rooms(statement: Select[Any], identity: Identity) -> Select[Any]:
    return statement.where(room_visible_to(identity))


def find_room(session: Session, identity: Identity, ident: str) -> Room:
    """A room the caller may see, by UUID or name; NotFound (404) otherwise."""
    room = session.scalar(select(Room).where(by_uuid_or_name(Room, ident),
                                             room_visible_to(identity)))
    if room is None:
        raise NotFound(f"Room {ident} could not be found.")
    return room


def find_in_room(session: Session, identity: Identity, model: Any, ident: str, kind: str
                 ) -> Any:
    """A row of ``model`` (a session, a job: anything with a ``room_id``) by UUID, in a room the
    caller may see; NotFound (404) otherwise."""
    found = session.scalar(select(model).join(Room).where(
        model.uuid == ident.lower(), room_visible_to(identity))) if is_uuid(ident) else None
    if found is None:
        raise NotFound(f"{kind} {ident} could not be found.")
    return found
