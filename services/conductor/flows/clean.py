"""Cleaning: automated (provide, and after a tear down) and manual (the steps the user gave),
on the deploy ramdisk, advanced on the agent's heartbeats by the deploy interface."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.common.exceptions import Invalid
from services.common.states import ProvisionState
from services.conductor import component_caches, step_plan
from services.conductor.flows import step_runner
from services.conductor.flows.steps import Step, advance, after_agent, event, on_ramdisk
from services.conductor.task import Task


def automated(task: Task) -> None:
    if task.node.automated_clean is False:
        task.process_event("done")
        return
    on_ramdisk(task, task.driver.network.add_cleaning_network, task.driver.deploy.clean,
               finish)


def manual_prepare(options: dict[str, Any]) -> Step:
    steps = step_plan.requested_steps(options, "clean")
    disable_ramdisk = bool(options.get("disable_ramdisk"))

    def prepare(task: Task) -> None:
        in_conductor = [step_plan.runs_in_conductor(step) for step in steps
                        if not step_plan.is_reserved(step)]
        if any(in_conductor) and not all(in_conductor):
            raise Invalid("Clean steps of the bios or firmware interface and of the deploy "
                          "interface cannot be mixed in one request yet: run them in two.")
        if any(in_conductor) or not in_conductor:  # at once: refused before the cleaning
            step_plan.clean_plan(task, steps, disable_ramdisk)
        task.update_internal_info(clean_steps=steps, disable_ramdisk=disable_ramdisk)
        event("clean")(task)

    return prepare


def manual(task: Task) -> None:
    """Check the user's steps against the node's (a refusal fails the cleaning, as Ironic's).
    Steps the conductor runs (``requires_ramdisk`` False: bios, firmware) run at once without
    the ramdisk; steps on the agent run on the deploy ramdisk, advanced on its heartbeats."""
    info = task.node.driver_internal_info
    plan = step_plan.clean_plan(task, list(info.get("clean_steps") or []),
                                bool(info.get("disable_ramdisk")))
    in_ramdisk = [step_plan.needs_ramdisk(task, step) for step in plan]
    step_runner.start(task, "clean", plan)
    if not any(in_ramdisk):
        _in_conductor(task, lambda: step_runner.run(task, "clean"))
        return
    if not all(in_ramdisk):
        raise Invalid("A manual cleaning cannot mix steps on the agent with steps the "
                      "conductor runs (or hold steps) yet: clean them in two requests.")
    on_ramdisk(task, task.driver.network.add_cleaning_network, _execute_clean_steps, finish)


def _in_conductor(task: Task, run: Callable[[], str | None]) -> None:
    """Run the conductor's clean steps; done, unless a hold step parked the cleaning."""
    plan = step_runner.plan_of(task, "clean")
    try:
        outcome = run()
    finally:  # also after a failed step: it may have changed some settings
        done = plan[:step_runner.current_index(task, "clean")]
        component_caches.refresh(task, "cleaning", step_plan.flashed_components(done))
    if outcome != step_runner.HOLD:
        _done(task)


def after_hold(task: Task) -> None:
    """After an unhold (the node in clean wait): the steps after the hold step."""
    task.process_event("resume")
    _in_conductor(task, lambda: step_runner.go_on(task, "clean", lambda: None))


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
    step_runner.forget(task, "clean")
    task.pop_internal_info("disable_ramdisk")
    manual = task.node.target_provision_state == ProvisionState.MANAGEABLE
    task.process_event("manage" if manual else "done")
