"""Running a node's planned steps in order, across the agent's heartbeats.

The plan (services/conductor/step_plan.py) is kept in ``driver_internal_info["<kind>_steps"]``
and the current step's index in ``"<kind>_step_index"``; the node's ``<kind>_step`` field shows
the step running. Each step runs through the interface that offers it (``execute_step``, then
``continue_step`` on each heartbeat while it answers WAIT); a step with an agent command is
sent to the agent by that interface. A failing step fails the operation, named in last_error
("deploy step bios.apply_configuration failed: ..."), except the core step ``deploy.deploy``:
its failures are the deploy interface's own messages (the image that could not be written),
which teachers read on the room page as before, as Ironic keeps the message of a deploy whose
interface failed it itself (set_failed_state) rather than wrapping it in the step's name.

A ``hold`` step (any interface, as Ironic's reserved step) is resolved here: it parks the
operation in its hold state (``deploy hold``, ``clean hold``, ``service hold``) and the run
answers HOLD; the ``unhold`` verb moves the node back to waiting and ``go_on`` carries on
after the hold step.
"""

from __future__ import annotations

from typing import Any

from services.common import states
from services.conductor.step_plan import CORE_STEP
from services.conductor.task import Task
from services.drivers.agent_client import AgentUnavailable
from services.drivers.base import WAIT, DriverError, Resume

HOLD = "hold"  # a run's answer: a hold step parked the operation until unhold
# The history event type of each kind of steps' operation.
OPERATIONS = {"deploy": "deploying", "clean": "cleaning", "service": "service"}


def is_hold(step: dict[str, Any]) -> bool:
    return step.get("step") == "hold"


def _index_key(kind: str) -> str:
    return f"{kind}_step_index"


def plan_of(task: Task, kind: str) -> list[dict[str, Any]]:
    return list(task.node.driver_internal_info.get(f"{kind}_steps") or [])


def current_index(task: Task, kind: str) -> int:
    """The index in the plan of the step running (of the steps done, once all are)."""
    return int(task.node.driver_internal_info.get(_index_key(kind)) or 0)


def start(task: Task, kind: str, plan: list[dict[str, Any]], index: int = 0) -> None:
    """Keep ``plan`` as the node's steps to run, from the one at ``index``."""
    task.update_internal_info(**{f"{kind}_steps": plan, _index_key(kind): index})
    setattr(task.node, f"{kind}_step", {})


def forget(task: Task, kind: str) -> None:
    task.pop_internal_info(f"{kind}_steps", _index_key(kind))
    setattr(task.node, f"{kind}_step", {})


def _call(task: Task, kind: str, step: dict[str, Any], resume: Resume, first: bool
          ) -> str | None:
    implementation = task.driver.interfaces[step["interface"]]
    args = dict(step.get("args") or {})
    method = implementation.execute_step if first else implementation.continue_step
    try:
        return method(task, step["step"], args, resume)
    except AgentUnavailable:
        raise  # the heartbeat's caller tries again on the next one
    except DriverError as exc:
        if (step["interface"], step["step"]) == CORE_STEP:
            raise
        raise DriverError(f"{kind} step {step['interface']}.{step['step']} failed: "
                          f"{exc}") from exc


def _advance_index(task: Task, kind: str, step: dict[str, Any]) -> None:
    index = current_index(task, kind) + 1
    task.update_internal_info(**{_index_key(kind): index})
    task.record(OPERATIONS[kind], f"{kind.capitalize()} step {step['interface']}.{step['step']} "
                           f"done.")


def run(task: Task, kind: str, resume: Resume = lambda: None) -> str | None:
    """Run the steps from the current one: WAIT when one waits for the agent, HOLD when a
    hold step parked the operation, None once every step is done."""
    plan = plan_of(task, kind)
    while (index := current_index(task, kind)) < len(plan):
        step = plan[index]
        setattr(task.node, f"{kind}_step", dict(step))
        if is_hold(step):
            task.process_event("hold")
            task.record(OPERATIONS[kind], f"Held by step {step['interface']}.hold until "
                                          "unhold.")
            task.commit()
            return HOLD
        if _call(task, kind, step, resume, first=True) == WAIT:
            return WAIT
        _advance_index(task, kind, step)
    return None


def go_on(task: Task, kind: str, resume: Resume) -> str | None:
    """On an agent's heartbeat (or after an unhold): advance the step that waited (a hold
    step is done once unheld), then run the next ones."""
    plan = plan_of(task, kind)
    index = current_index(task, kind)
    if index < len(plan):
        step = plan[index]
        if not is_hold(step) and _call(task, kind, step, resume, first=False) == WAIT:
            return WAIT
        _advance_index(task, kind, step)
    outcome = run(task, kind, resume)
    if outcome == WAIT and task.node.provision_state not in states.WAIT_STATES:
        task.process_event("wait")  # a step resumed the operation, a later one waits again
        task.commit()
    return outcome
