"""Cleaning: automated (provide, and after a tear down) and manual (the steps the user gave),
on the deploy ramdisk, advanced on the agent's heartbeats by the deploy interface."""

from __future__ import annotations

from typing import Any

from services.common.exceptions import Invalid
from services.common.states import ProvisionState
from services.conductor import component_caches
from services.conductor.flows import conductor_steps
from services.conductor.flows.steps import Step, advance, after_agent, event, on_ramdisk
from services.conductor.task import Task
from services.drivers.base import DriverError


def automated(task: Task) -> None:
    if task.node.automated_clean is False:
        task.process_event("done")
        return
    on_ramdisk(task, task.driver.network.add_cleaning_network, task.driver.deploy.clean,
               finish)


def manual_prepare(options: dict[str, Any]) -> Step:
    steps = options.get("clean_steps")
    if not steps or not isinstance(steps, list):
        raise Invalid('"clean_steps" is required when setting the target provision state to '
                      '"clean".')
    for step in steps:
        if not isinstance(step, dict) or not {"interface", "step"} <= step.keys():
            raise Invalid(f"Invalid clean step {step!r}: each step needs \"interface\" and "
                          "\"step\".")

    def prepare(task: Task) -> None:
        in_conductor = [conductor_steps.runs_in_conductor(step) for step in steps]
        if any(in_conductor) and not all(in_conductor):
            raise Invalid("Clean steps of the bios or firmware interface and of the deploy "
                          "interface cannot be mixed in one request yet: run them in two.")
        if any(in_conductor):
            try:
                conductor_steps.check(task, steps)
            except DriverError as exc:
                raise Invalid(str(exc)) from None
        task.update_internal_info(clean_steps=steps)
        event("clean")(task)

    return prepare


def manual(task: Task) -> None:
    """Steps the conductor runs (bios) need no ramdisk; the deploy interface's run on it."""
    steps = task.node.driver_internal_info.get("clean_steps", [])
    if all(conductor_steps.runs_in_conductor(step) for step in steps):
        conductor_steps.run(task, steps)
        _done(task)
        return
    on_ramdisk(task, task.driver.network.add_cleaning_network, _execute_clean_steps, finish)


def _execute_clean_steps(task: Task) -> str | None:
    steps = task.node.driver_internal_info.get("clean_steps", [])
    return task.driver.deploy.execute_clean_steps(task, steps)


def continue_on_heartbeat(task: Task) -> None:
    advance(task, task.driver.deploy.continue_clean, after_agent(finish, fast_track=True))


def finish(task: Task) -> None:
    task.driver.boot.clean_up_ramdisk(task)
    task.driver.network.remove_cleaning_network(task)
    component_caches.refresh(task, "cleaning")
    _done(task)


def _done(task: Task) -> None:
    task.node.clean_step = {}
    task.pop_internal_info("clean_steps")
    manual = task.node.target_provision_state == ProvisionState.MANAGEABLE
    task.process_event("manage" if manual else "done")
