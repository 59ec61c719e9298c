"""Power changes the user asks for: validated under the lock, made by a worker; a failure is
recorded on the node (it does not fail a provisioning operation). A PC powered off while a
user was logged in at it goes back to its idle VLAN (``login_step.log_out``). A node with
``disable_power_off`` (API 1.95) is not powered off on request, nor by a soft reboot."""

from __future__ import annotations

from services.conductor.flows.steps import Step, validate
from services.conductor.task import Task
from services.drivers.base import (
    POWER_OFF,
    POWER_ON,
    REBOOT,
    SOFT_POWER_OFF,
    SOFT_REBOOT,
)
from services.drivers.deploy import login_step
from services.drivers.power_actions import record_power, refuse_power_off, soft_reboot

_EVENTUAL_POWER = {POWER_ON: POWER_ON, POWER_OFF: POWER_OFF, REBOOT: POWER_ON,
                   SOFT_REBOOT: POWER_ON, SOFT_POWER_OFF: POWER_OFF}


def change(target: str) -> tuple[Step, Step]:
    def prepare(task: Task) -> None:
        refuse_power_off(task, target)  # API 1.95: a 500, as Ironic's PowerStateFailure
        validate(task, "power")
        task.node.last_error = None
        task.node.target_power_state = _EVENTUAL_POWER[target]
        task.commit()

    def work(task: Task) -> None:
        try:
            if target == REBOOT:
                task.driver.power.reboot(task)
            elif target == SOFT_REBOOT:
                soft_reboot(task)
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
        if _EVENTUAL_POWER[target] == POWER_OFF:
            login_step.log_out(task)

    return prepare, work
