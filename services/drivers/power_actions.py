"""Power changes made as part of provisioning, and what the node records about them.

Shared by the conductor's flows and the interfaces that boot a node into the deploy ramdisk.

A node with ``disable_power_off`` (API 1.95) is never powered off, as in Ironic: a power-off
is refused (``refuse_power_off``, Ironic's ``conductor/utils.py`` ``node_power_action``), the
flows' power-offs are skipped (``power_off_or_ask``), a power-on that ends a power-off is a
reboot (``power_on_or_reboot``, Ironic's ``drivers/utils.py`` ``power_off_and_on``), an
operation that would leave the node off reboots it instead (``reboot_if_kept_on``) and a soft
reboot is the interface's own, never a soft power-off then on (``soft_reboot``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from services.common.exceptions import EnclumeError
from services.drivers.base import (
    POWER_OFF,
    POWER_ON,
    SOFT_POWER_OFF,
    SOFT_REBOOT,
    ManualActionRequired,
)

if TYPE_CHECKING:
    from services.conductor.task import Task

LOG = logging.getLogger(__name__)


def record_power(task: Task, state: str) -> None:
    """After a change: its target, or what the driver reads when it cannot confirm changes."""
    power = task.driver.power
    task.node.power_state = state if power.confirms_power_changes else power.get_power_state(task)
    task.node.target_power_state = None


def refuse_power_off(task: Task, target: str) -> None:
    """A node with ``disable_power_off`` is not powered off: Ironic's PowerStateFailure."""
    if target in (POWER_OFF, SOFT_POWER_OFF) and task.node.disable_power_off:
        raise EnclumeError(f"Failed to set node power state to {target}.")


def set_power(task: Task, state: str) -> None:
    refuse_power_off(task, state)
    task.driver.power.set_power_state(task, state)
    record_power(task, state)


def reboot(task: Task) -> None:
    """Restart the machine (power it on if it is off), e.g. into the deploy ramdisk."""
    task.driver.power.reboot(task)
    record_power(task, POWER_ON)


def soft_reboot(task: Task) -> None:
    """Ask the OS to shut down, then power on: what every interface can do. A node with
    ``disable_power_off`` only gets an interface's own soft reboot (Redfish GracefulRestart);
    the others refuse it, as Ironic's ``IPMIPower.set_power_state``."""
    power = task.driver.power
    if task.node.disable_power_off:
        power.set_power_state(task, SOFT_REBOOT)
        return
    power.set_power_state(task, SOFT_POWER_OFF)
    power.set_power_state(task, POWER_ON)


def power_off_or_ask(task: Task) -> None:
    """Power off; where the driver cannot (Wake-on-LAN, no agent) record who has to. A node
    with ``disable_power_off`` stays as it is (its flow reboots it where it would power on)."""
    if task.node.disable_power_off:
        LOG.info("node %s is not powered off: disable_power_off", task.node.uuid)
        return
    try:
        set_power(task, POWER_OFF)
    except ManualActionRequired as exc:
        task.node.power_state = None
        task.record("power", f"{exc}. The operation goes on.", severity="WARNING")


def power_on_or_reboot(task: Task) -> None:
    """Boot what the node is now prepared to boot after ``power_off_or_ask``: power on, or
    reboot a node with ``disable_power_off`` (it was left running)."""
    if task.node.disable_power_off:
        reboot(task)
    else:
        set_power(task, POWER_ON)


def reboot_if_kept_on(task: Task) -> None:
    """At the end of an operation that leaves a node off: a node with ``disable_power_off``
    was kept running what the operation booted (the ramdisk, the instance): reboot it out of
    that, as Ironic's ``tear_down_inband_cleaning`` and ``AgentBaseMixin.clean_up`` do."""
    if task.node.disable_power_off:
        reboot(task)
