"""Inspection: the inspect interface reads the hardware at once, or boots the ramdisk and
applies the inventory its agent reports on a heartbeat."""

from __future__ import annotations

from services.common.exceptions import Invalid
from services.common.models import utcnow
from services.conductor.flows.steps import advance, after_agent, event, validate
from services.conductor.task import Task
from services.drivers.base import WAIT


def prepare(task: Task) -> None:
    if not task.driver.inspect.supported:
        raise Invalid(f"Driver {task.node.driver} does not support inspection with the "
                      f"inspect interface {task.node.inspect_interface!r}.")
    validate(task, "inspect")
    event("inspect")(task)


def inspect(task: Task) -> None:
    task.node.inspection_started_at = utcnow()
    task.node.inspection_finished_at = None
    if task.driver.inspect.inspect_hardware(task) == WAIT:
        task.process_event("wait")
        return
    task.node.inspection_finished_at = utcnow()
    task.process_event("done")


def continue_on_heartbeat(task: Task) -> None:
    advance(task, task.driver.inspect.continue_inspection, after_agent(_finish, fast_track=True))


def _finish(task: Task) -> None:
    task.driver.boot.clean_up_ramdisk(task)
    task.node.inspection_finished_at = utcnow()
    task.process_event("done")
