"""Saving a student's work at a session's end: the plan a deploy carries, and the state the
image store's capture makes of it (issue #20).

A room job that restores or powers off a PC where a student is logged in
(``driver_internal_info["pc_login"]``, services/classroom/pc_logins.py) rebuilds it with
``instance_info["save_student_state"]``; the deploy plans the capture from the login
(``plan_from_login``: whose work, on which image version, which state it replaces), the agent
sends the disk's first ``size`` bytes (the version's) to the boot service's capture routes as a
reference PC's capture does, and the commit records the state here (``record_capture``).

The state is stored in the image store as the whole disk's manifest (the version's blocks with
the student's on top, content-addressed: a block two students changed alike is stored once, a
block equal to the version's is the version's), so a resume is a block restore of that manifest;
its size is the bytes of the blocks that differ from the version. Nothing is recorded before the
commit: a capture cut short leaves the student's previous state as it was.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.classroom.student_states import NewState, QuotaExceeded, record_state
from services.common.classroom_models import ImageVersion, Room, RoomPC
from services.common.config_classroom_sections import StudentStateSettings
from services.common.models import Node
from services.common.state_models import StudentState
from services.images.manifest import Manifest

PC_LOGIN = "pc_login"  # the contract with services/classroom/pc_logins.record_login
SAVE_FLAG = "save_student_state"  # instance_info: save the logged-in student's work first
POWER_OFF_AFTER = "power_off_after_deploy"  # instance_info: end powered off, not booted
PLAN = "state_capture"  # driver_internal_info: the capture planned for this deploy
SAVED_ACTIONS = ("fresh", "resume")  # a maintenance login saves nothing


def logged_in(internal_info: dict[str, Any] | None) -> dict[str, Any] | None:
    """The student logged in at the PC whose work a session's end saves, if any."""
    login = (internal_info or {}).get(PC_LOGIN)
    if not isinstance(login, dict) or login.get("action") not in SAVED_ACTIONS:
        return None
    if not isinstance(login.get("user"), str) or not isinstance(login.get("image_version"),
                                                                   str):
        return None
    return login


def plan_from_login(node: Node) -> dict[str, Any] | None:
    """The capture of the logged-in student's work (None: nobody's work to save). Its store
    session is named after the login, so a retry finds the blocks an interrupted try sent."""
    login = logged_in(node.driver_internal_info)
    if login is None:
        return None
    key = f"state/{node.uuid}/{login['user']}/{login['image_version']}/{login.get('at')}"
    return {"owner": login["user"], "image_version": login["image_version"],
            "replaces": login.get("state"),
            "session": "state-" + hashlib.sha256(key.encode()).hexdigest()[:40]}


def _replaced(session: Session, plan: dict[str, Any], version: ImageVersion
              ) -> StudentState | None:
    """The state the student resumed from, replaced by the new one (theirs, same version)."""
    ident = plan.get("replaces")
    if not isinstance(ident, str):
        return None
    return session.scalar(select(StudentState).where(
        StudentState.uuid == ident.lower(), StudentState.owner == plan["owner"],
        StudentState.image_version_id == version.id))


def differing(base: Manifest, captured: Manifest) -> list[int]:
    """The blocks of ``captured`` that are not the version's."""
    return [index for index, digest in enumerate(captured.blocks)
            if index >= len(base.blocks) or base.blocks[index] != digest]


class CaptureRefused(Exception):
    """The capture cannot be recorded (the version went, the quota): the store forgets it."""


def record_capture(session: Session, settings: StudentStateSettings, node_uuid: str,
                   plan: dict[str, Any], base: Manifest, captured: Manifest, store_id: str,
                   now: datetime | None = None) -> tuple[dict[str, Any], str | None]:
    """Record the committed capture as the student's state: its document for the agent, and
    the store id of the state it replaced (for the store to forget)."""
    version = session.scalar(select(ImageVersion).where(
        ImageVersion.uuid == plan["image_version"]))
    if version is None:
        raise CaptureRefused(f"image version {plan['image_version']} was deleted meanwhile: "
                             f"{plan['owner']}'s work was not saved")
    changed = differing(base, captured)
    size = sum(captured.block_length(index) for index in changed)
    room = session.scalar(select(Room).join(RoomPC).join(Node, RoomPC.node_id == Node.id)
                          .where(Node.uuid == node_uuid))
    replaces = _replaced(session, plan, version)
    replaced_store_id = replaces.store_id if replaces is not None else None
    moment = now or datetime.now(UTC).replace(tzinfo=None)
    label = replaces.label if replaces is not None else \
        f"{room.name if room else 'PC'} {moment:%Y-%m-%d %H:%M}"
    try:
        state = record_state(session, settings, NewState(
            plan["owner"], version, room, label, store_id, size), moment, replaces)
    except QuotaExceeded as exc:
        raise CaptureRefused(f"{exc.message} {plan['owner']}'s work was not saved") from None
    return {"uuid": state.uuid, "owner": state.owner, "label": state.label,
            "image_version": version.uuid, "size_bytes": size, "differing_blocks": len(changed),
            "replaced": replaced_store_id is not None}, replaced_store_id
