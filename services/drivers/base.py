"""Driver interfaces and hardware types.

A hardware type is composition, not inheritance: for each interface it names which
implementations it allows and which one is the default. A node picks one implementation per
interface; the conductor builds a ``NodeDriver`` of those instances for the work at hand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from services.conductor.task import Task

POWER_ON = "power on"
POWER_OFF = "power off"
REBOOT = "rebooting"
SOFT_POWER_OFF = "soft power off"
SOFT_REBOOT = "soft rebooting"
POWER_TARGETS = (POWER_ON, POWER_OFF, REBOOT, SOFT_POWER_OFF, SOFT_REBOOT)

BOOT_DEVICES = ("pxe", "disk", "cdrom", "bios", "safe", "wanboot", "uefi http")

LOG = logging.getLogger(__name__)


class DriverError(Exception):
    """A driver could not do what it was asked; the message is shown to the user."""


class MissingParameters(DriverError):
    pass


def unexpected_error(protocol: str, what: str, where: str, error: BaseException) -> DriverError:
    """An exception of a type a BMC library is not documented to raise (its bug, or an answer
    it could not parse): logged with its traceback (scrubbed, as every log line), shown as
    Ironic's "<protocol> call failed" without the raw text, which may quote anything."""
    LOG.warning("%s %s at %s raised %s", protocol, what, where, type(error).__name__,
                exc_info=error)
    return DriverError(f"{protocol} call failed: {what} at {where} (unexpected "
                       f"{type(error).__name__}; the details are in the conductor's log).")


class ManualActionRequired(DriverError):
    """The interface cannot do this on this machine now; a person has to (WoL power off)."""


class Interface(Protocol):
    def validate(self, task: Task) -> None:
        """Raise DriverError (with a clear reason) if the node cannot use this interface."""


class PowerInterface(Interface, Protocol):
    def get_power_state(self, task: Task) -> str: ...
    def set_power_state(self, task: Task, state: str) -> None: ...
    def reboot(self, task: Task) -> None: ...


class ManagementInterface(Interface, Protocol):
    def get_supported_boot_devices(self, task: Task) -> list[str]: ...
    def get_boot_device(self, task: Task) -> dict[str, Any]: ...
    def set_boot_device(self, task: Task, device: str, persistent: bool) -> None: ...


class BootInterface(Interface, Protocol):
    def prepare_ramdisk(self, task: Task) -> None: ...
    def clean_up_ramdisk(self, task: Task) -> None: ...
    def prepare_instance(self, task: Task) -> None: ...
    def clean_up_instance(self, task: Task) -> None: ...


class DeployInterface(Interface, Protocol):
    def deploy(self, task: Task) -> str | None:
        """Write the instance. Returns "wait" when it continues asynchronously, else None."""

    def tear_down(self, task: Task) -> None: ...
    def clean(self, task: Task) -> str | None: ...
    def execute_clean_steps(self, task: Task, steps: list[dict[str, Any]]) -> str | None: ...


class NetworkInterface(Interface, Protocol):
    def add_provisioning_network(self, task: Task) -> None: ...
    def remove_provisioning_network(self, task: Task) -> None: ...
    def add_cleaning_network(self, task: Task) -> None: ...
    def remove_cleaning_network(self, task: Task) -> None: ...
    def configure_tenant_networks(self, task: Task) -> None: ...
    def unconfigure_tenant_networks(self, task: Task) -> None: ...


class InspectInterface(Interface, Protocol):
    def inspect_hardware(self, task: Task) -> str | None: ...


@dataclass(frozen=True)
class HardwareType:
    name: str
    # interface -> allowed implementation names, the first one being the default
    supported: dict[str, tuple[str, ...]]
    properties: dict[str, str] = field(default_factory=dict)

    def default(self, interface: str) -> str:
        return self.supported[interface][0]

    def allows(self, interface: str, implementation: str) -> bool:
        return implementation in self.supported.get(interface, ())


@dataclass
class NodeDriver:
    """The interface instances of one node, as its hardware type and fields choose them."""

    hardware_type: HardwareType
    interfaces: dict[str, Any]

    @property
    def power(self) -> PowerInterface:
        return self.interfaces["power"]  # type: ignore[no-any-return]

    @property
    def management(self) -> ManagementInterface:
        return self.interfaces["management"]  # type: ignore[no-any-return]

    @property
    def boot(self) -> BootInterface:
        return self.interfaces["boot"]  # type: ignore[no-any-return]

    @property
    def deploy(self) -> DeployInterface:
        return self.interfaces["deploy"]  # type: ignore[no-any-return]

    @property
    def network(self) -> NetworkInterface:
        return self.interfaces["network"]  # type: ignore[no-any-return]

    @property
    def inspect(self) -> InspectInterface:
        return self.interfaces["inspect"]  # type: ignore[no-any-return]
