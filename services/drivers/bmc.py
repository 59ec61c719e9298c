"""The power and management interfaces of machines with a BMC, one piece of code for every BMC
protocol.

``BmcPower`` validates, reads, switches and reboots; what differs between IPMI and Redfish
(how to reach a BMC, the command for each power target, the state polled until the command is
done, the words of a timeout) is the ``BmcPowerControl`` it is composed with. ``BmcManagement``
likewise checks and reads or sets the boot device through a ``BmcBootControl``. A change is sent,
then the state polled until reached (``ENCLUME_POWER_STATE_CHANGE_TIMEOUT_S``); reboot is
power off (when not off) then on, as in Ironic: a reset of a machine that is off fails. A node
with ``disable_power_off`` (API 1.95) is never powered off: its reboot is a reset when it is on
(IPMI ``power reset``, Redfish ``ForceRestart``), as Ironic's ``IPMIPower.reboot`` and
``RedfishPower.reboot``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from services.common.config import Settings
from services.drivers.base import (
    POWER_OFF,
    POWER_ON,
    DriverError,
    ManagementInterface,
    PowerInterface,
)
from services.drivers.blocking import wait_for
from services.drivers.boot_mode import boot_mode

if TYPE_CHECKING:
    from services.conductor.task import Task


@dataclass(frozen=True)
class PowerCommand:
    request: Any  # what the protocol sends (a pyghmi power state, a sushy reset type)
    done_when: Any  # the polled state once the command is done
    label: str  # the command in messages


class BmcPowerControl(Protocol):
    name: str  # "IPMI", "Redfish": for messages
    commands: Mapping[str, PowerCommand]  # by power target; POWER_ON and POWER_OFF at least
    reset: PowerCommand  # a hard reset of a machine that is on (it never goes off)

    def access(self, driver_info: dict[str, Any]) -> Any:
        """Where and how to reach the BMC; DriverError when driver_info cannot say."""

    def read(self, access: Any) -> str:
        """The machine's power state, as a node records it."""

    def send(self, access: Any, command: PowerCommand) -> None: ...

    def poll(self, access: Any) -> Any:
        """The state compared with ``done_when``."""

    def still(self, access: Any, polled: Any, command: PowerCommand, timeout_s: float) -> str:
        """The message of a command not done in time."""


class BmcPower(PowerInterface):
    def __init__(self, control: BmcPowerControl, settings: Settings) -> None:
        self.control = control
        self.settings = settings

    def validate(self, task: Task) -> None:
        self.control.access(task.node.driver_info)

    def get_power_state(self, task: Task) -> str:
        return self.control.read(self.control.access(task.node.driver_info))

    def set_power_state(self, task: Task, state: str) -> None:
        command = self.control.commands.get(state)
        if command is None:
            raise DriverError(f"{self.control.name} cannot set the power state {state!r}")
        self._run(self.control.access(task.node.driver_info), command)

    def reboot(self, task: Task) -> None:
        access = self.control.access(task.node.driver_info)
        state = self.control.read(access)
        if task.node.disable_power_off and state != POWER_OFF:
            # Never off, whatever else the BMC reads (on, unknown, in between): a reset.
            self._run(access, self.control.reset)
            return
        if state != POWER_OFF:
            self._run(access, self.control.commands[POWER_OFF])
        self._run(access, self.control.commands[POWER_ON])

    def _run(self, access: Any, command: PowerCommand) -> None:
        self.control.send(access, command)
        timeout_s = self.settings.drivers.power_state_change_timeout_s
        reached = wait_for(lambda: self.control.poll(access),
                           lambda state: bool(state == command.done_when), timeout_s,
                           self.settings.drivers.power_poll_interval_s)
        if reached != command.done_when:
            raise DriverError(self.control.still(access, reached, command, timeout_s))


class BmcBootControl(Protocol):
    name: str  # "IPMI", "Redfish": for messages
    devices: Mapping[str, Any]  # Enclume's boot device -> the protocol's

    def access(self, driver_info: dict[str, Any]) -> Any: ...

    def get_boot_device(self, access: Any) -> dict[str, Any]:
        """``{"boot_device": ..., "persistent": ...}``."""

    def set_boot_device(self, access: Any, device: str, persistent: bool,
                        boot_mode: str) -> None: ...


class BmcManagement(ManagementInterface):
    def __init__(self, control: BmcBootControl, settings: Settings) -> None:
        self.control = control
        self.settings = settings

    def validate(self, task: Task) -> None:
        self.control.access(task.node.driver_info)

    def get_supported_boot_devices(self, task: Task) -> list[str]:
        return list(self.control.devices)

    def get_boot_device(self, task: Task) -> dict[str, Any]:
        return self.control.get_boot_device(self.control.access(task.node.driver_info))

    def set_boot_device(self, task: Task, device: str, persistent: bool) -> None:
        if device not in self.control.devices:
            raise DriverError(f"{self.control.name} cannot boot from {device!r}; it can boot "
                              f"from {', '.join(self.control.devices)}")
        access = self.control.access(task.node.driver_info)
        self.control.set_boot_device(access, device, persistent,
                                     boot_mode(task.node, self.settings))
