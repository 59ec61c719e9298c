"""Resuming a student's state: a deploy whose instance_info names ``student_state`` (beside the
``image_version`` it was saved on) restores the state's manifest, the version's blocks with the
student's on top, by blocks (delta: only what differs from the disk), verified against it.

The state must be the one of the student logged in at the PC
(``driver_internal_info["pc_login"]``) and made on the version the deploy restores: anyone
else's state does not exist for the deploy, a state of another version is refused, as the API
refuses them (services/classroom/student_states.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from services.common.state_models import StudentState
from services.common.validation import is_uuid
from services.drivers.driver_info import InvalidParameter

if TYPE_CHECKING:
    from services.conductor.task import Task

STUDENT_STATE = "student_state"


def resumed_state(task: Task) -> StudentState | None:
    """The state the deploy resumes (None: the version alone); InvalidParameter if refused."""
    info = task.node.instance_info or {}
    ident = info.get(STUDENT_STATE)
    if ident in (None, ""):
        return None
    login = (task.node.driver_internal_info or {}).get("pc_login")
    user = login.get("user") if isinstance(login, dict) else None
    state = task.session.scalar(select(StudentState).where(
        StudentState.uuid == ident.lower())) if isinstance(ident, str) and is_uuid(ident) \
        else None
    if state is None or user is None or state.owner != user:
        raise InvalidParameter(f"Student state {ident} could not be found for the user logged "
                               f"in at node {task.node.uuid}.")
    version = info.get("image_version")
    if not isinstance(version, str) or state.image_version.uuid != version.lower():
        raise InvalidParameter(
            f"Student state {state.label!r} was saved on version "
            f"{state.image_version.version} of image {state.image_version.image.name} "
            f"({state.image_version.uuid}), not on the version this deploy restores "
            f"({version}).")
    return state


def mark_used(state: StudentState) -> None:
    state.last_used_at = datetime.now(UTC).replace(tzinfo=None)
