"""What the conductor does for each provisioning verb and power change, as driver calls.

Each long operation is a pair: ``prepare`` runs under the lock in the caller's thread (checks,
then the state machine event the user asked for), ``work`` runs in a worker and ends in a stable,
wait or failure state. Interfaces that return "wait" hand over to an agent's callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.common.exceptions import Invalid
from services.common.models import Allocation, utcnow
from services.common.states import ProvisionState
from services.conductor.task import Task
from services.discovery import untrusted
from services.drivers.base import (
    POWER_OFF,
    POWER_ON,
    REBOOT,
    SOFT_POWER_OFF,
    SOFT_REBOOT,
    WAIT,
    DriverError,
)
from services.drivers.deploy.ramdisk import forget_agent
from services.drivers.power_actions import power_off_or_ask, record_power, set_power

Step = Callable[[Task], None]

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
}

ABORT_MESSAGES: dict[ProvisionState, str] = {
    ProvisionState.CLEANWAIT: "Cleaning was aborted by the user.",
    ProvisionState.DEPLOYWAIT: "Deployment was aborted by the user.",
    ProvisionState.INSPECTWAIT: "Inspection was aborted by the user.",
    ProvisionState.RESCUEWAIT: "Rescue was aborted by the user.",
}


def failure_message(task: Task, event_type: str, exc: BaseException) -> str:
    return f"{event_type.capitalize()} failed for node {task.node.uuid}: {exc}"


# -- verbs that need no worker -------------------------------------------------------------


def is_immediate(state: str, event: str) -> bool:
    """Verbs that only change state: manage from a stable/failed state, and abort."""
    if event == "abort":
        return True
    return event == "manage" and state != ProvisionState.ENROLL


def immediate(task: Task, event: str) -> None:
    if event == "abort":
        state = ProvisionState(task.node.provision_state)
        task.fail("provisioning", ABORT_MESSAGES.get(state, "Aborted by the user."),
                  event="abort")
        task.driver.boot.clean_up_ramdisk(task)
        forget_agent(task)  # its heartbeats are refused from now on
        return
    task.process_event(event)


# -- long verbs ----------------------------------------------------------------------------


def provisioning(event: str, options: dict[str, Any]) -> tuple[Step, Step]:
    """The (prepare, work) pair of a provisioning verb."""
    if event in ("deploy", "rebuild"):
        return _deploy_prepare(event, options), _deploy
    if event == "delete":
        return _event(event), _tear_down
    if event == "provide":
        return _event(event), _automated_clean
    if event == "clean":
        return _manual_clean_prepare(options), _manual_clean
    if event == "manage":
        return _manage_prepare, _verify
    if event == "inspect":
        return _inspect_prepare, _inspect
    if event == "adopt":
        return _adopt_prepare, _adopt
    raise Invalid(f'The requested action "{event}" is not supported by hardware of this kind.')


def _event(event: str) -> Step:
    def prepare(task: Task) -> None:
        task.node.last_error = None
        task.process_event(event)
        task.commit()

    return prepare


def _manage_prepare(task: Task) -> None:
    """enroll -> verifying: an operator takes the node on; if discovery created it, it is now
    trusted (power sync and verification may use its BMC credentials)."""
    task.node.driver_internal_info = untrusted.without_marker(task.node.driver_internal_info)
    _event("manage")(task)


def _validate(task: Task, *interfaces: str) -> None:
    for name in interfaces:
        try:
            task.driver.interfaces[name].validate(task)
        except DriverError as exc:
            raise Invalid(f"Failed to validate {name} interface for node {task.node.uuid}: "
                          f"{exc}") from exc


def _verify(task: Task) -> None:
    """enroll -> manageable: the power credentials must work."""
    _validate(task, "power", "management")
    task.node.power_state = task.driver.power.get_power_state(task)
    task.process_event("done")


def _deploy_prepare(event: str, options: dict[str, Any]) -> Step:
    def prepare(task: Task) -> None:
        instance_info = dict(task.node.instance_info)
        if options.get("configdrive") is not None:
            instance_info["configdrive"] = options["configdrive"]
        task.node.instance_info = instance_info
        # With the request's config drive in place: a refusal (400) rolls it back with the rest.
        _validate(task, "power", "management", "boot", "deploy", "network")
        steps = {k: options[k] for k in ("deploy_steps", "disable_ramdisk") if options.get(k)}
        if steps:
            task.update_internal_info(**steps)
        task.node.last_error = None
        task.process_event(event)
        task.commit()

    return prepare


def _deploy(task: Task) -> None:
    task.driver.network.add_provisioning_network(task)
    task.driver.boot.prepare_ramdisk(task)
    if task.driver.deploy.deploy(task) == WAIT:
        task.process_event("wait")
        return
    finish_deploy(task)


def finish_deploy(task: Task) -> None:
    """After the image is written: boot the instance on the tenant network."""
    task.driver.boot.clean_up_ramdisk(task)
    task.driver.network.remove_provisioning_network(task)
    task.driver.network.configure_tenant_networks(task)
    task.driver.boot.prepare_instance(task)
    task.node.conductor_affinity = task.conductor
    set_power(task, POWER_ON)
    task.pop_internal_info("deploy_steps", "disable_ramdisk")
    task.node.deploy_step = {}
    task.process_event("done")


def _tear_down(task: Task) -> None:
    power_off_or_ask(task)
    task.driver.deploy.tear_down(task)
    task.driver.network.unconfigure_tenant_networks(task)
    task.driver.boot.clean_up_instance(task)
    _release_instance(task)
    task.process_event("clean")
    task.commit()
    _automated_clean(task)


def _release_instance(task: Task) -> None:
    node = task.node
    if node.allocation_id is not None:
        allocation = task.session.get(Allocation, node.allocation_id)
        if allocation is not None:
            task.session.delete(allocation)
        node.allocation_id = None
    node.instance_uuid = None
    node.instance_info = {}


def _automated_clean(task: Task) -> None:
    if task.node.automated_clean is False:
        task.process_event("done")
        return
    task.driver.network.add_cleaning_network(task)
    task.driver.boot.prepare_ramdisk(task)
    if task.driver.deploy.clean(task) == WAIT:
        task.process_event("wait")
        return
    finish_cleaning(task)


def finish_cleaning(task: Task) -> None:
    task.driver.boot.clean_up_ramdisk(task)
    task.driver.network.remove_cleaning_network(task)
    task.node.clean_step = {}
    task.pop_internal_info("clean_steps")
    manual = task.node.target_provision_state == ProvisionState.MANAGEABLE
    task.process_event("manage" if manual else "done")


def _manual_clean_prepare(options: dict[str, Any]) -> Step:
    steps = options.get("clean_steps")
    if not steps or not isinstance(steps, list):
        raise Invalid('"clean_steps" is required when setting the target provision state to '
                      '"clean".')
    for step in steps:
        if not isinstance(step, dict) or not {"interface", "step"} <= step.keys():
            raise Invalid(f"Invalid clean step {step!r}: each step needs \"interface\" and "
                          "\"step\".")

    def prepare(task: Task) -> None:
        task.update_internal_info(clean_steps=steps)
        _event("clean")(task)

    return prepare


def _manual_clean(task: Task) -> None:
    task.driver.network.add_cleaning_network(task)
    task.driver.boot.prepare_ramdisk(task)
    steps = task.node.driver_internal_info.get("clean_steps", [])
    if task.driver.deploy.execute_clean_steps(task, steps) == WAIT:
        task.process_event("wait")
        return
    finish_cleaning(task)


def _inspect_prepare(task: Task) -> None:
    if not task.driver.inspect.supported:
        raise Invalid(f"Driver {task.node.driver} does not support inspection with the "
                      f"inspect interface {task.node.inspect_interface!r}.")
    _validate(task, "inspect")
    _event("inspect")(task)


def _inspect(task: Task) -> None:
    task.node.inspection_started_at = utcnow()
    task.node.inspection_finished_at = None
    if task.driver.inspect.inspect_hardware(task) == WAIT:
        task.process_event("wait")
        return
    task.node.inspection_finished_at = utcnow()
    task.process_event("done")


def _adopt_prepare(task: Task) -> None:
    _validate(task, "power", "boot", "deploy")
    _event("adopt")(task)


def _adopt(task: Task) -> None:
    task.driver.boot.prepare_instance(task)
    task.node.power_state = task.driver.power.get_power_state(task)
    task.process_event("done")


# -- power ---------------------------------------------------------------------------------

_EVENTUAL_POWER = {POWER_ON: POWER_ON, POWER_OFF: POWER_OFF, REBOOT: POWER_ON,
                   SOFT_REBOOT: POWER_ON, SOFT_POWER_OFF: POWER_OFF}


def power_change(target: str) -> tuple[Step, Step]:
    def prepare(task: Task) -> None:
        try:
            task.driver.power.validate(task)
        except DriverError as exc:
            raise Invalid(f"Failed to validate power interface for node {task.node.uuid}: "
                          f"{exc}") from exc
        task.node.last_error = None
        task.node.target_power_state = _EVENTUAL_POWER[target]
        task.commit()

    def work(task: Task) -> None:
        try:
            if target == REBOOT:
                task.driver.power.reboot(task)
            elif target == SOFT_REBOOT:
                # Ask the OS to shut down, then power on: what every interface can do.
                task.driver.power.set_power_state(task, SOFT_POWER_OFF)
                task.driver.power.set_power_state(task, POWER_ON)
            else:
                task.driver.power.set_power_state(task, target)
        except Exception as exc:
            message = (f"Failed to change power state to '{_EVENTUAL_POWER[target]}' by "
                       f"'{target}'. Error: {exc}")
            task.node.target_power_state = None
            task.node.last_error = message
            task.record("power", message, severity="ERROR")
            return
        record_power(task, _EVENTUAL_POWER[target])

    return prepare, work
