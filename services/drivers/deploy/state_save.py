"""Saving the logged-in student's work before a deploy rewrites the PC (issue #20).

A deploy whose instance_info has ``save_student_state`` (a room job's restore or power-off of a
PC where a student is logged in) plans the capture when it starts (``plan``), then, once the
agent is up, runs ``image.capture_blocks`` over the disk's first bytes (the version's size)
before anything is written (``advance``). The boot service records the state at the capture's
commit (services/classroom/state_capture.py); the login is forgotten then. A capture that
fails (the store full, the quota, the PC lost) fails the deploy before the disk is touched:
the student's work stays on the PC until a retry saves it or a teacher confirms a restore that
discards it (a room action with ``discard_unsaved``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.classroom import state_capture
from services.classroom.pc_logins import clear_login
from services.common.config import Settings
from services.drivers.agent_client import AgentCommandFailed
from services.drivers.base import WAIT, DriverError
from services.drivers.deploy import steps
from services.drivers.deploy.block_restore import store_of
from services.drivers.deploy.image import target_disk
from services.images.errors import StoreError

if TYPE_CHECKING:
    from services.conductor.task import Task

CAPTURE_COMMAND = "image.capture_blocks"
PLAN = state_capture.PLAN


def plan(task: Task, settings: Settings) -> None:
    """At the deploy's start: the capture to run first, if it saves a logged-in student."""
    task.pop_internal_info(PLAN)
    if not (task.node.instance_info or {}).get(state_capture.SAVE_FLAG):
        return
    planned = state_capture.plan_from_login(task.node)
    if planned is None:
        return  # nobody logged in (or a teacher's maintenance): nothing to save
    try:
        size = store_of(settings).manifest(planned["image_version"]).size
    except StoreError as exc:
        raise DriverError(f"{planned['owner']}'s work cannot be saved: its image version is "
                          f"not in the image store ({exc}); the PC was not restored") from None
    task.update_internal_info(**{PLAN: {**planned, "size": size, "done": False}})


def advance(task: Task, settings: Settings) -> str | None:
    """On a heartbeat: WAIT while the capture runs, None once it is done (or none planned)."""
    planned = task.node.driver_internal_info.get(PLAN)
    if not isinstance(planned, dict) or planned.get("done"):
        return None
    node = task.node

    def params() -> dict[str, Any]:
        found: dict[str, Any] = {
            "capture_url": f"{settings.effective_boot_url.rstrip('/')}/image-captures/"
                           f"{node.uuid}",
            "image_type": "whole-disk", "size": planned["size"]}
        disk = target_disk(node)
        return found if disk is None else {**found, "target_disk": disk}

    try:
        result = steps.advance(task, CAPTURE_COMMAND, params,
                               settings.deploy.agent_command_timeout_s)
    except AgentCommandFailed as exc:
        raise DriverError(
            f"saving {planned['owner']}'s work failed: {exc}. The PC was not restored over it: "
            f"retry the PC to save it again, or restore it with discard_unsaved to drop "
            f"it") from None
    if result is None:
        return WAIT
    saved = result.get("version") if isinstance(result.get("version"), dict) else {}
    task.update_internal_info(**{PLAN: {**planned, "done": True, "state": saved.get("uuid")}})
    clear_login(node)
    task.record("deploying", f"Saved {planned['owner']}'s work as state {saved.get('uuid')} "
                             f"({saved.get('size_bytes')} bytes differ from the image version, "
                             f"{result.get('sent_blocks')} blocks sent).")
    return None
