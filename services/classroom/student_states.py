"""Students' saved states: who may see which, the quotas, and the retention.

A state is private. Its owner may list, rename, resume and delete it; the teachers of the room
it was saved in (and staff) may list, pin and delete it, never read or resume it; anyone else
is told it does not exist (404, by id too). A student's states count against a quota of states
and bytes; a state neither used nor saved for ``retention_days`` goes unless it is pinned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.orm import Session

from services.classroom.access import room_visible_to
from services.common.classroom_models import ImageVersion, Room
from services.common.config_classroom_sections import StudentStateSettings
from services.common.exceptions import Conflict, Forbidden, Invalid, NotFound
from services.common.identity import Identity
from services.common.state_models import StudentState
from services.common.validation import is_uuid, text


def label_of(value: Any) -> str:
    label = text("label", value, limit_of="name").strip()
    if not label:
        raise Invalid("A state's label must not be empty.")
    return label


class QuotaExceeded(Conflict):
    """A student's states would pass their count or bytes quota (409, the figures said)."""


def _teaches(identity: Identity) -> ColumnElement[bool]:
    """States saved in a room the caller teaches (all of them for staff)."""
    if identity.is_staff:
        return StudentState.id.is_not(None)
    if "teacher" not in identity.roles:
        return false()
    return StudentState.room_id.in_(select(Room.id).where(room_visible_to(identity)))


def state_visible_to(identity: Identity) -> ColumnElement[bool]:
    return or_(StudentState.owner == identity.user, _teaches(identity))


def find_state(session: Session, identity: Identity, ident: str) -> StudentState:
    state = session.scalar(select(StudentState).where(
        StudentState.uuid == ident.lower(), state_visible_to(identity))) if is_uuid(ident) \
        else None
    if state is None:
        raise NotFound(f"Student state {ident} could not be found.")
    return state


def find_own_state(session: Session, identity: Identity, ident: str,
                   version: ImageVersion) -> StudentState:
    """A state to resume: the caller's own (anyone else's does not exist for them), made on
    ``version`` (a state of another version is refused: its blocks differ from another base)."""
    state = session.scalar(select(StudentState).where(
        StudentState.uuid == ident.lower(), StudentState.owner == identity.user)) \
        if is_uuid(ident) else None
    if state is None:
        raise NotFound(f"Student state {ident} could not be found.")
    if state.image_version_id != version.id:
        raise Conflict(f"State {state.label!r} was saved on version "
                       f"{state.image_version.version} of image "
                       f"{state.image_version.image.name}, not on version {version.version} "
                       "this session uses.")
    return state


def update_state(state: StudentState, identity: Identity, body: Any) -> None:
    """Rename (the owner) or pin/unpin (the room's teachers, staff)."""
    if not isinstance(body, dict) or not body or set(body) - {"label", "pinned"}:
        raise Invalid("A state's update sets 'label' (its owner) and/or 'pinned' (a teacher).")
    if "label" in body:
        if state.owner != identity.user:
            raise Forbidden("Only the state's owner may rename it.")
        state.label = label_of(body["label"])
    if "pinned" in body:
        if not isinstance(body["pinned"], bool):
            raise Invalid("'pinned' must be true or false.")
        if not (identity.is_staff or "teacher" in identity.roles) or state.owner == \
                identity.user:
            raise Forbidden("Only a teacher of the class may pin or unpin a state.")
        state.pinned = body["pinned"]


@dataclass(frozen=True)
class NewState:
    owner: str
    version: ImageVersion
    room: Room | None
    label: str
    store_id: str
    size_bytes: int


def record_state(session: Session, settings: StudentStateSettings, new: NewState,
                 now: datetime, replaces: StudentState | None = None) -> StudentState:
    """Add a completed capture as the owner's state (replacing ``replaces``, the state it was
    resumed from, only now that the new one is whole); QuotaExceeded if it would not fit."""
    label = label_of(new.label)
    others = select(func.count(), func.coalesce(func.sum(StudentState.size_bytes), 0)).where(
        StudentState.owner == new.owner)
    if replaces is not None:
        others = others.where(StudentState.id != replaces.id)
    count, used = session.execute(others).one()
    if count + 1 > settings.max_count:
        raise QuotaExceeded(f"{new.owner} already keeps {count} states, the most allowed is "
                            f"{settings.max_count}: delete one first.")
    if used + new.size_bytes > settings.max_bytes:
        raise QuotaExceeded(f"{new.owner}'s states would take {used + new.size_bytes} bytes, "
                            f"over the quota of {settings.max_bytes} bytes ({used} used): "
                            "delete a state first.")
    if replaces is not None:
        session.delete(replaces)
    state = StudentState(owner=new.owner, image_version_id=new.version.id,
                         room_id=new.room.id if new.room else None, label=label,
                         store_id=new.store_id, size_bytes=new.size_bytes,
                         created_at=now, last_used_at=now)
    session.add(state)
    session.flush()
    return state


def expire_states(session: Session, retention_days: float, now: datetime) -> list[str]:
    """Delete the unpinned states unused for ``retention_days``; their store ids (for the
    store to forget them)."""
    stale = session.scalars(select(StudentState).where(
        StudentState.pinned.is_(False),
        StudentState.last_used_at < now - timedelta(days=retention_days))).all()
    for state in stale:
        session.delete(state)
    return [state.store_id for state in stale]
