"""Rescue and unrescue (API 1.38), as Ironic's conductor does them (do_node_rescue).

Rescue keeps the password and its hash in ``instance_info`` (services/drivers/rescue_password.py),
validates the power, rescue and network interfaces (a refusal is 400 "Failed to rescue
instance ... Validation failed: ...", the password gone), then moves the node to ``rescuing``;
the rescue interface's ``rescue`` runs in a worker: ``fake`` is done at once (``rescue``),
``agent`` boots the rescue ramdisk and waits (``rescue wait``) until its agent's heartbeat
finishes it (``continue_on_heartbeat``). Unrescue brings the node back to ``active`` and
forgets the password. A failure is ``rescue failed`` or ``unrescue failed`` with Ironic's
"Failed to rescue: ..." / "Failed to unrescue: ..."; a rescue ramdisk that never calls back
within ENCLUME_RESCUE_CALLBACK_TIMEOUT_S fails with Ironic's timeout text. Every failure
cleans up as Ironic's rescuing_error_handler: the node powered off, its password, ramdisk boot,
rescuing network and agent forgotten.
"""

from __future__ import annotations

from typing import Any

from services.common.exceptions import Invalid
from services.conductor.flows.steps import Step, advance, fail_with, validate
from services.conductor.task import Task
from services.drivers.agent_client import AgentUnavailable
from services.drivers.base import WAIT, DriverError, Resume
from services.drivers.rescue_password import forget_password, keep_password

TIMEOUT_MESSAGE = "Timeout reached while waiting for rescue ramdisk callback for node"


def _supported(task: Task) -> None:
    if not task.driver.interfaces["rescue"].supported:
        raise Invalid(f"Driver {task.node.driver} does not support rescue (disabled or not "
                      "implemented).")


def prepare(options: dict[str, Any]) -> Step:
    def prepare(task: Task) -> None:
        node = task.node
        keep_password(task, str(options.get("rescue_password") or ""))
        try:
            _supported(task)
            validate(task, "power", "rescue", "network")
        except Invalid as exc:
            raise Invalid(f"Failed to rescue instance {node.instance_uuid} for node "
                          f"{node.uuid}: Validation failed: {exc.message}") from exc
        node.last_error = None
        task.process_event("rescue")
        task.commit()

    return prepare


def unrescue_prepare(task: Task) -> None:
    node = task.node
    try:
        validate(task, "power")
    except Invalid as exc:
        raise Invalid(f"Failed to unrescue instance {node.instance_uuid} for node "
                      f"{node.uuid}: Validation failed: {exc.message}") from exc
    _supported(task)
    node.last_error = None
    task.process_event("unrescue")
    task.commit()


def rescue(task: Task) -> None:
    try:
        outcome = task.driver.rescue.rescue(task)
    except DriverError as exc:
        fail(task, f"Failed to rescue: {exc}")
        return
    task.process_event("wait" if outcome == WAIT else "done")


def _finalize(task: Task, resume: Resume) -> str | None:
    try:
        return task.driver.rescue.continue_rescue(task, resume)
    except AgentUnavailable:
        raise  # the next heartbeat tries again
    except DriverError as exc:
        fail(task, f"Node failed to perform rescue operation: {exc}")
        return WAIT  # rescue failed: nothing waits for the agent any more


def continue_on_heartbeat(task: Task) -> None:
    """``rescue wait``: the rescue ramdisk's agent is up; finalize the rescue through it."""
    advance(task, _finalize, lambda task: task.process_event("done"))


def clean_up(task: Task) -> None:
    """After a failed or aborted rescue: the rescue interface's clean up, the password gone."""
    try:
        task.driver.rescue.clean_up(task)
    except DriverError as exc:
        task.record("rescue", f"Failed to clean up the rescue: {exc}", severity="WARNING")
    forget_password(task)


def fail(task: Task, message: str) -> None:
    """Ironic's rescuing_error_handler: power off, clean up the rescue, then ``rescue failed``."""
    clean_up(task)
    fail_with(task, "rescue", message)


def fail_timeout(task: Task) -> None:
    fail(task, TIMEOUT_MESSAGE)


def unrescue(task: Task) -> None:
    forget_password(task)
    try:
        task.driver.rescue.unrescue(task)
    except DriverError as exc:
        task.fail("rescue", f"Failed to unrescue: {exc}")
        return
    task.process_event("done")
