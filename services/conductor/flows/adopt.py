"""Taking a node on: verify (manage from enroll: its power credentials must work; its BIOS
settings are cached) and adopt (an active machine enters the inventory as it is, nothing
written)."""

from __future__ import annotations

from services.conductor import component_caches
from services.conductor.flows.steps import event, validate
from services.conductor.task import Task
from services.discovery import untrusted


def verify_prepare(task: Task) -> None:
    """enroll -> verifying: an operator takes the node on; if discovery created it, it is now
    trusted (power sync and verification may use its BMC credentials)."""
    task.node.driver_internal_info = untrusted.without_marker(task.node.driver_internal_info)
    event("manage")(task)


def verify(task: Task) -> None:
    """enroll -> manageable: the power credentials must work."""
    validate(task, "power", "management")
    task.node.power_state = task.driver.power.get_power_state(task)
    component_caches.refresh(task, "verify")
    task.process_event("done")


def adopt_prepare(task: Task) -> None:
    validate(task, "power", "boot", "deploy")
    event("adopt")(task)


def adopt(task: Task) -> None:
    task.driver.boot.prepare_instance(task)
    task.node.power_state = task.driver.power.get_power_state(task)
    task.process_event("done")
