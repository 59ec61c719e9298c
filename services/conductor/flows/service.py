"""Servicing an active node (API 1.87), as Ironic's: the user's service steps run in the order
given by the step runner that runs clean steps, then the node is active again. Service steps
are the clean steps the conductor runs (bios, firmware, raid) and ``hold`` steps, which park
the node in ``service hold`` until unhold; steps on the agent are refused (no service ramdisk
yet). A failure is ``service failed``; an abort (in wait, hold or failure) ends in active."""

from __future__ import annotations

from typing import Any

from services.conductor import component_caches, step_plan
from services.conductor.flows import step_runner
from services.conductor.flows.steps import Step, event
from services.conductor.task import Task

ABORTED = "By request, the service operation was aborted"  # Ironic's last_error


def prepare(options: dict[str, Any]) -> Step:
    steps = step_plan.requested_steps(options, "service")

    def prepare(task: Task) -> None:
        step_runner.start(task, "service", step_plan.service_plan(task, steps))
        event("service")(task)

    return prepare


def service(task: Task) -> None:
    _run(task, lambda: step_runner.run(task, "service"))


def after_hold(task: Task) -> None:
    """After an unhold (the node in service wait): the steps after the hold step."""
    task.process_event("resume")
    _run(task, lambda: step_runner.go_on(task, "service", lambda: None))


def _run(task: Task, run: Any) -> None:
    plan = step_runner.plan_of(task, "service")
    try:
        outcome = run()
    finally:  # also after a failed step: it may have changed some settings
        done = plan[:step_runner.current_index(task, "service")]
        if any(step_plan.runs_in_conductor(step) for step in done):
            component_caches.refresh(task, "service", step_plan.flashed_components(done))
    if outcome == step_runner.HOLD:
        return
    step_runner.forget(task, "service")
    task.process_event("done")


def abort(task: Task) -> None:
    """Ironic's abort of servicing: service failed, then active, with its last_error."""
    step = task.node.service_step or {}
    message = ABORTED + (f' during or after the completion of step "{step["step"]}"'
                         if step.get("step") else "")
    if task.node.provision_state != "service failed":
        task.process_event("abort")
    step_runner.forget(task, "service")
    task.process_event("abort")
    task.node.last_error = message
    task.record("service", message)
