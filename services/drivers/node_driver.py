"""A node's driver: the interface implementations its hardware type and fields chose, each
checked against its contract (services/drivers/base.py) when it is reached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from services.common.hardware_types import HardwareType
from services.drivers.base import (
    CONTRACTS,
    BiosInterface,
    BootInterface,
    ConsoleInterface,
    DeployInterface,
    FirmwareInterface,
    InspectInterface,
    Interface,
    ManagementInterface,
    NetworkInterface,
    PowerInterface,
    RaidInterface,
    RescueInterface,
)
from services.drivers.contract_check import ContractError

InterfaceT = TypeVar("InterfaceT", bound=Interface)


def check_implementation(interface: str, implementation: object) -> Interface:
    """``implementation`` as an ``interface`` implementation, or ContractError."""
    contract = CONTRACTS[interface]
    if not isinstance(implementation, contract):
        raise ContractError(f"{type(implementation).__qualname__} is not a "
                            f"{contract.__name__}: it cannot be a {interface} interface.")
    return implementation


class _Contracted(Generic[InterfaceT]):
    """A ``NodeDriver`` attribute: the node's implementation of one interface, checked to be
    of its contract."""

    def __init__(self, contract: type[InterfaceT]) -> None:
        self.contract = contract

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, driver: NodeDriver, owner: type | None = None) -> InterfaceT:
        implementation = driver.interfaces[self.name]
        if not isinstance(implementation, self.contract):
            raise ContractError(f"{type(implementation).__qualname__} is not a "
                                f"{self.contract.__name__}.")
        return implementation


@dataclass
class NodeDriver:
    """The interface instances of one node, as its hardware type and fields choose them."""

    hardware_type: HardwareType
    interfaces: dict[str, Interface]

    power = _Contracted(PowerInterface)
    management = _Contracted(ManagementInterface)
    boot = _Contracted(BootInterface)
    deploy = _Contracted(DeployInterface)
    network = _Contracted(NetworkInterface)
    inspect = _Contracted(InspectInterface)
    bios = _Contracted(BiosInterface)
    firmware = _Contracted(FirmwareInterface)
    raid = _Contracted(RaidInterface)
    console = _Contracted(ConsoleInterface)
    rescue = _Contracted(RescueInterface)
