"""Power changes made as part of provisioning, and what the node records about them.

Shared by the conductor's flows and the interfaces that boot a node into the deploy ramdisk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.drivers.base import POWER_OFF, POWER_ON, ManualActionRequired

if TYPE_CHECKING:
    from services.conductor.task import Task


def record_power(task: Task, state: str) -> None:
    """After a change: its target, or what the driver reads when it cannot confirm changes."""
    power = task.driver.power
    task.node.power_state = state if power.confirms_power_changes else power.get_power_state(task)
    task.node.target_power_state = None


def set_power(task: Task, state: str) -> None:
    task.driver.power.set_power_state(task, state)
    record_power(task, state)


def reboot(task: Task) -> None:
    """Restart the machine (power it on if it is off), e.g. into the deploy ramdisk."""
    task.driver.power.reboot(task)
    record_power(task, POWER_ON)


def power_off_or_ask(task: Task) -> None:
    """Power off; where the driver cannot (Wake-on-LAN, no agent) record who has to."""
    try:
        set_power(task, POWER_OFF)
    except ManualActionRequired as exc:
        task.node.power_state = None
        task.record("power", f"{exc}. The operation goes on.", severity="WARNING")
