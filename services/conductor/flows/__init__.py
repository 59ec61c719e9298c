"""What the conductor does for each provisioning verb and power change, as driver calls.

Each long operation is a pair: ``prepare`` runs under the lock in the caller's thread (checks,
then the state machine event the user asked for), ``work`` runs in a worker and ends in a stable,
wait or failure state. Interfaces that return WAIT hand over to an agent: its heartbeats
continue the operation (``CONTINUATIONS``). One module per operation: ``deploy`` (and tear
down), ``clean``, ``capture`` (a cleaning the conductor plans), ``inspect``, ``adopt`` (and
verify), ``rescue`` (and unrescue), ``power``; ``steps`` is what they share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.common.exceptions import Invalid
from services.common.states import ProvisionState
from services.conductor.flows import adopt, capture, clean, deploy, inspect, rescue, service
from services.conductor.flows.steps import Step, event
from services.conductor.task import Task
from services.drivers.deploy.ramdisk import forget_agent

# The node history event type of each operation, as Ironic names them.
EVENT_TYPES: dict[str, str] = {
    "manage": "verify",
    "provide": "cleaning",
    "clean": "cleaning",
    "deploy": "deploying",
    "rebuild": "deploying",
    "delete": "unprovision",
    "inspect": "introspection",
    "adopt": "adoption",
    "rescue": "rescue",
    "unrescue": "rescue",
    "abort": "provisioning",
    "unhold": "provisioning",
    "service": "service",
}

ABORT_MESSAGES: dict[ProvisionState, str] = {
    ProvisionState.CLEANWAIT: "Cleaning was aborted by the user.",
    ProvisionState.DEPLOYWAIT: "Deployment was aborted by the user.",
    ProvisionState.INSPECTWAIT: "Inspection was aborted by the user.",
    ProvisionState.RESCUEWAIT: "Rescue was aborted by the user.",
    ProvisionState.CLEANHOLD: "Cleaning was aborted by the user.",
    ProvisionState.DEPLOYHOLD: "Deployment was aborted by the user.",
}
SERVICE_ABORTABLE = frozenset({ProvisionState.SERVICEWAIT, ProvisionState.SERVICEHOLD,
                               ProvisionState.SERVICEFAIL})

# What an unhold continues, by the (wait) state it moves its node to.
AFTER_HOLD: dict[ProvisionState, Callable[[Task], None]] = {
    ProvisionState.DEPLOYWAIT: deploy.continue_on_heartbeat,
    ProvisionState.CLEANWAIT: clean.after_hold,
    ProvisionState.SERVICEWAIT: service.after_hold,
}

# What an agent's heartbeat continues, by the state of its node.
CONTINUATIONS: dict[ProvisionState, Callable[[Task], None]] = {
    ProvisionState.DEPLOYWAIT: deploy.continue_on_heartbeat,
    ProvisionState.CLEANWAIT: clean.continue_on_heartbeat,
    ProvisionState.INSPECTWAIT: inspect.continue_on_heartbeat,
    ProvisionState.RESCUEWAIT: rescue.continue_on_heartbeat,
}


# -- verbs that need no worker -------------------------------------------------------------


def is_immediate(state: str, event: str) -> bool:
    """Verbs that only change state: manage from a stable/failed state, and abort."""
    if event == "abort":
        return True
    return event == "manage" and state != ProvisionState.ENROLL


def immediate(task: Task, event: str) -> None:
    if event == "abort":
        state = ProvisionState(task.node.provision_state)
        if state == ProvisionState.RESCUEWAIT:
            rescue.clean_up(task)
        if state in SERVICE_ABORTABLE:
            service.abort(task)
            return
        task.fail("provisioning", ABORT_MESSAGES.get(state, "Aborted by the user."),
                  event="abort")
        task.driver.boot.clean_up_ramdisk(task)
        forget_agent(task)  # its heartbeats are refused from now on
        return
    task.process_event(event)


def _after_hold(task: Task) -> None:
    AFTER_HOLD[ProvisionState(task.node.provision_state)](task)


# -- long verbs ----------------------------------------------------------------------------


def provisioning(name: str, options: dict[str, Any]) -> tuple[Step, Step]:
    """The (prepare, work) pair of a provisioning verb."""
    if name in ("deploy", "rebuild"):
        return deploy.prepare(name, options), deploy.deploy
    if name == "delete":
        return event(name), deploy.tear_down
    if name == "provide":
        return event(name), clean.automated
    if name == "clean" and options.get(capture.OPTION):
        return capture.prepare(options), capture.capture
    if name == "clean":
        return clean.manual_prepare(options), clean.manual
    if name == "manage":
        return adopt.verify_prepare, adopt.verify
    if name == "inspect":
        return inspect.prepare, inspect.inspect
    if name == "adopt":
        return adopt.adopt_prepare, adopt.adopt
    if name == "rescue":
        return rescue.prepare(options), rescue.rescue
    if name == "unrescue":
        return rescue.unrescue_prepare, rescue.unrescue
    if name == "unhold":
        return event(name), _after_hold
    if name == "service":
        return service.prepare(options), service.service
    raise Invalid(f'The requested action "{name}" is not supported by hardware of this kind.')
