"""What the provisioning flows share: a state machine event as a prepare step, validation as
the API reports it, the "prepare the ramdisk → driver call → wait or finish" sequence, and how
work that waited for an agent advances and fails."""

from __future__ import annotations

import logging
from collections.abc import Callable

from services.common import states
from services.common.exceptions import Invalid
from services.conductor.flows.step_runner import HOLD
from services.conductor.runner import failure_message
from services.conductor.task import Task
from services.drivers.agent_client import AgentUnavailable
from services.drivers.base import WAIT, DriverError, Resume
from services.drivers.deploy.ramdisk import forget_agent
from services.drivers.power_actions import power_off_or_ask, reboot_if_kept_on

LOG = logging.getLogger(__name__)

Step = Callable[[Task], None]

S = states.ProvisionState
# The node history event type, and the words of last_error, of the operation of each state.
EVENT_TYPES = {S.DEPLOYING: "deploying", S.DEPLOYWAIT: "deploying", S.CLEANING: "cleaning",
               S.CLEANWAIT: "cleaning", S.INSPECTING: "introspection",
               S.INSPECTWAIT: "introspection", S.RESCUING: "rescue", S.RESCUEWAIT: "rescue",
               S.SERVICING: "service", S.SERVICEWAIT: "service"}
def event_type(state: str) -> str:
    return EVENT_TYPES.get(S(state), "provisioning")


def event(name: str) -> Step:
    """A prepare step: clear the last error and move the node by ``name``, committed."""

    def prepare(task: Task) -> None:
        task.node.last_error = None
        task.process_event(name)
        task.commit()

    return prepare


def validate(task: Task, *interfaces: str) -> None:
    for name in interfaces:
        try:
            task.driver.interfaces[name].validate(task)
        except DriverError as exc:
            raise Invalid(f"Failed to validate {name} interface for node {task.node.uuid}: "
                          f"{exc}") from exc


def on_ramdisk(task: Task, add_network: Step, call: Callable[[Task], str | None],
               finish: Step) -> None:
    """Put the node on its network and prepare the ramdisk boot, then make the driver call: it
    answers WAIT (the node waits for its agent) or the operation finishes now. A node powered
    through its own network is powered off first: its ports are about to move."""
    if task.driver.power.reaches_node_in_band(task):
        power_off_or_ask(task)
    add_network(task)
    task.driver.boot.prepare_ramdisk(task)
    outcome = call(task)
    if outcome == WAIT:
        task.process_event("wait")
        return
    if outcome == HOLD:  # parked by a hold step: its node is in its hold state
        return
    finish(task)


# -- work that waits for an agent ----------------------------------------------------------


def _resume(task: Task) -> Resume:
    def resume() -> None:
        if task.node.provision_state in states.WAIT_STATES:
            task.process_event("resume")
            task.commit()

    return resume


def advance(task: Task, method: Callable[[Task, Resume], str | None], finish: Step) -> None:
    """On an agent's heartbeat: advance the waiting work by the interface's ``method``; finish
    it when the method is done, fail it on a driver error."""
    operation = event_type(task.node.provision_state)
    resume = _resume(task)
    try:
        outcome = method(task, resume)
    except AgentUnavailable as exc:
        if task.node.provision_state in states.WAIT_STATES:
            LOG.warning("node %s: %s; trying again on the next heartbeat", task.node.uuid, exc)
            task.commit()
            return
        fail(task, operation, exc)
        return
    except DriverError as exc:
        fail(task, operation, exc)
        return
    if outcome in (WAIT, HOLD):
        return
    resume()
    finish(task)


def fail(task: Task, operation: str, error: BaseException) -> None:
    """Fail the operation with last_error "<Operation> failed for node X: <error>"."""
    fail_with(task, operation, failure_message(task, operation, error))


def fail_with(task: Task, operation: str, message: str) -> None:
    """Remove the ramdisk boot, power the node off, forget its agent, then fail the operation
    (as Ironic: the failure state is reached once the machine is off)."""
    try:
        task.driver.boot.clean_up_ramdisk(task)
        power_off_or_ask(task)  # Wake-on-LAN powers off through the agent: forget it after
    except DriverError as exc:
        task.record(operation, f"Powering the node off after the failure failed: {exc}",
                    severity="WARNING")
    forget_agent(task)
    task.fail(operation, message)


def after_agent(finish: Step, fast_track: bool = False) -> Step:
    """``finish`` once the agent is done: power the node off and forget its agent first;
    with ``fast_track`` (cleaning, inspection: they leave the node off), not when the deploy
    interface keeps the agent up for the next operation (services/common/fast_track.py).
    A node with ``disable_power_off`` stays on: cleaning and inspection reboot it once their
    finish removed the ramdisk boot (Ironic's ``tear_down_inband_cleaning``, inspector
    ``tear_down_managed_boot``); a deploy locks its agent down and its finish reboots it
    into the instance (Ironic's ``tear_down_agent``, ``boot_instance``)."""

    def finish_after_agent(task: Task) -> None:
        operation = event_type(task.node.provision_state)
        if fast_track and task.driver.deploy.keeps_agent(task):
            task.record(operation, "Fast track: the agent stays up for the next operation.")
            finish(task)
            return
        if task.node.disable_power_off and not fast_track:
            try:
                task.driver.deploy.lock_down_agent(task)
            except DriverError as exc:
                fail(task, operation, exc)
                return
        power_off_or_ask(task)
        forget_agent(task)
        finish(task)
        if fast_track:
            reboot_if_kept_on(task)

    return finish_after_agent
