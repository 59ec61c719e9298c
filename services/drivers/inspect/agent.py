"""The ``agent`` inspect interface: boot the deploy ramdisk, ask the agent for its inventory.

``inspect_hardware`` prepares the ramdisk boot and reboots the node ("wait": inspect wait); on
the agent's heartbeat ``continue_inspection`` runs ``inventory.get`` and applies the inventory
(services/drivers/inspect/inventory.py); the conductor then powers the node off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from services.common.config import Settings
from services.drivers.base import WAIT, InspectInterface
from services.drivers.deploy import steps
from services.drivers.deploy.ramdisk import boot_ramdisk
from services.drivers.inspect import inventory

if TYPE_CHECKING:
    from services.conductor.task import Task

GET_INVENTORY = "inventory.get"


class AgentInspect(InspectInterface):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def validate(self, task: Task) -> None:
        task.driver.power.validate(task)
        task.driver.boot.validate(task)

    def inspect_hardware(self, task: Task) -> str | None:
        task.driver.boot.prepare_ramdisk(task)
        return boot_ramdisk(task, self.settings)

    def continue_inspection(self, task: Task, resume: Callable[[], None]) -> str | None:
        result = steps.advance(task, GET_INVENTORY, dict,
                               self.settings.deploy.agent_command_timeout_s)
        if result is None:
            return WAIT
        inventory.apply(task, result.get("inventory"))
        return None
