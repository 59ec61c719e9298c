"""Whether a room's PCs ask for a login at their boot prompt, and in which language.

A room's own ``pc_logins`` and ``login_language`` decide; where the room says nothing (null),
the settings do (``ENCLUME_PC_LOGIN_AT_BOOT``, ``ENCLUME_PC_LOGIN_LANGUAGE``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.classroom_models import Room, RoomPC
from services.common.config import Settings


@dataclass(frozen=True)
class LoginPolicy:
    room: str
    at_boot: bool
    language: str


def login_policy(session: Session, node_id: int, settings: Settings) -> LoginPolicy | None:
    """The login policy of the room the node is a PC of; None when it is in no room."""
    row = session.execute(
        select(Room.name, Room.pc_logins, Room.login_language)
        .join(RoomPC, RoomPC.room_id == Room.id)
        .where(RoomPC.node_id == node_id)).first()
    if row is None:
        return None
    return applied(row.name, row.pc_logins, row.login_language, settings)


def applied(room: str, pc_logins: bool | None, login_language: str | None,
            settings: Settings) -> LoginPolicy:
    """What a room's own switch and language (None: the settings decide) come to."""
    return LoginPolicy(room, settings.pc_login.at_boot if pc_logins is None else pc_logins,
                       login_language or settings.pc_login.language)
