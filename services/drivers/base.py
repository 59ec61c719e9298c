"""Driver interfaces and hardware types.

A hardware type is composition, not inheritance: for each interface it names which
implementations it allows and which one is the default. A node picks one implementation per
interface; the conductor builds a ``NodeDriver`` of those instances for the work at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from services.common.exceptions import DriverError
from services.common.hardware_types import (  # noqa: F401 (the drivers' names for them)
    BOOT_DEVICES,
    POWER_OFF,
    POWER_ON,
    POWER_TARGETS,
    REBOOT,
    SOFT_POWER_OFF,
    SOFT_REBOOT,
    HardwareType,
)

if TYPE_CHECKING:
    from services.conductor.task import Task


class MissingParameters(DriverError):
    pass


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
