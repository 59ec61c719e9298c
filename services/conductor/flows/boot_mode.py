"""Boot mode and secure boot changes the user asks for (API 1.76), as Ironic makes them: the
management interface validated under the lock (400), then a worker reads the current value,
changes it only if it differs, and keeps the outcome on the node (``boot_mode``,
``secure_boot``) or, on a failure, in ``last_error`` with Ironic's texts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from services.common.exceptions import Invalid
from services.conductor.flows.steps import Step
from services.conductor.task import Task
from services.drivers.base import DriverError

LOG = logging.getLogger(__name__)


def check_management(task: Task) -> None:
    """The management interface validated; what it finds wrong answers 400 (Invalid)."""
    try:
        task.driver.management.validate(task)
    except DriverError as exc:
        raise Invalid(str(exc)) from exc


def validated_management(task: Task) -> None:
    """A prepare step: the management interface validated (400), the last error cleared."""
    check_management(task)
    task.node.last_error = None
    task.commit()


def _change(field: str, label: str, read: Callable[[Task], Any],
            write: Callable[[Task, Any], None], target: Any, failure: str
            ) -> tuple[Step, Step]:
    def work(task: Task) -> None:
        try:
            current = read(task)
        except Exception as exc:  # as Ironic: an unknown current value, then change it
            LOG.warning("node %s: cannot read its %s: %s", task.node.uuid, label, exc)
            current = None
        if current is not None and current == target:
            setattr(task.node, field, current)
            return
        try:
            write(task, target)
        except Exception as exc:
            task.node.last_error = failure.format(target=target, error=exc)
            task.record("management", task.node.last_error, severity="ERROR")
            return
        setattr(task.node, field, target)
        task.record("management", f"Changed {label} to {target}")

    return validated_management, work


def change_boot_mode(target: str) -> tuple[Step, Step]:
    return _change("boot_mode", "boot mode",
                   lambda task: task.driver.management.get_boot_mode(task),
                   lambda task, mode: task.driver.management.set_boot_mode(task, mode),
                   target, "Failed to change boot mode to '{target}: {error}")


def change_secure_boot(target: bool) -> tuple[Step, Step]:
    return _change("secure_boot", "secure boot",
                   lambda task: task.driver.management.get_secure_boot_state(task),
                   lambda task, on: task.driver.management.set_secure_boot_state(task, on),
                   target, "Failed to change secure_boot state to '{target}': {error}")
