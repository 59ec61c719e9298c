"""Which hardware types and interface implementations exist, and building them for a node."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from services.common.config import Settings
from services.common.hardware_types import (  # noqa: F401 (the registry's names for them)
    FAKE_HARDWARE,
    HARDWARE_TYPES,
    IPMI,
    REDFISH,
    WOL,
    HardwareType,
    UnknownHardwareType,
)
from services.common.models import Node
from services.common.node_fields import INTERFACES
from services.drivers import fake
from services.drivers.agent_rescue import AgentRescue
from services.drivers.base import Interface
from services.drivers.bios import FakeBios, NoBios
from services.drivers.boot.ipxe import ipxe_boot, pxe_boot
from services.drivers.console import FakeConsole, NoConsole
from services.drivers.deploy.direct import direct_deploy
from services.drivers.deploy.diskless import ramdisk_deploy
from services.drivers.deploy.iscsi import iscsi_deploy
from services.drivers.firmware import FakeFirmware, NoFirmware
from services.drivers.inspect.agent import AgentInspect
from services.drivers.network.vlan import VlanNetwork
from services.drivers.node_driver import NodeDriver, check_implementation
from services.drivers.noop import NoopManagement
from services.drivers.raid import FakeRaid, NoRaid
from services.drivers.wol import WolPower

Factory = Callable[[Settings], Interface]


def _null(_settings: Settings) -> Interface:
    return fake.NoInterface()


def _working(_settings: Settings) -> Interface:
    """An implementation that validates and has nothing to do (fake bios, noop storage ...)."""
    return fake.FakeOther()


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported when first called: the BMC client libraries (pyghmi, sushy)
    cost a conductor time and memory only once a node uses them."""

    def make(*args: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args)

    return make


IMPLEMENTATIONS: dict[tuple[str, str], Factory] = {
    ("power", "fake"): lambda s: fake.FakePower(s.fake.power_delay_s),
    ("management", "fake"): lambda s: fake.FakeManagement(s.fake.management_delay_s),
    ("boot", "fake"): lambda s: fake.FakeBoot(s.fake.boot_delay_s),
    ("deploy", "fake"): lambda s: fake.FakeDeploy(s.fake.deploy_delay_s),
    ("network", "noop"): lambda s: fake.NoopNetwork(s.fake.network_delay_s),
    ("network", "flat"): lambda s: fake.FakeNetwork(s.fake.network_delay_s),
    ("network", "vlan"): VlanNetwork,
    ("inspect", "fake"): lambda s: fake.FakeInspect(s.fake.deploy_delay_s),
    ("inspect", "no-inspect"): lambda s: fake.NoInspect(),
    ("bios", "fake"): lambda s: FakeBios(),
    ("bios", "no-bios"): lambda s: NoBios(),
    ("firmware", "fake"): lambda s: FakeFirmware(),
    ("firmware", "no-firmware"): lambda s: NoFirmware(),
    ("raid", "fake"): lambda s: FakeRaid(),
    ("raid", "no-raid"): lambda s: NoRaid(),
    ("vendor", "fake"): _working,
    ("vendor", "no-vendor"): _null,
    ("rescue", "fake"): lambda s: fake.FakeRescue(),
    ("rescue", "no-rescue"): lambda s: fake.NoRescue(),
    ("rescue", "agent"): AgentRescue,
    ("console", "fake"): lambda s: FakeConsole(),
    ("console", "no-console"): lambda s: NoConsole(),
    ("console", "ipmitool-socat"): _lazy("services.drivers.ipmi_console", "socat_console"),
    ("console", "ipmitool-shellinabox"): _lazy("services.drivers.ipmi_console",
                                                "shellinabox_console"),
    ("storage", "noop"): _working,
    ("storage", "external"): _working,  # volumes stored; the storage is managed elsewhere
    ("management", "noop"): lambda s: NoopManagement(),
    ("power", "wol"): WolPower,
    ("boot", "ipxe"): ipxe_boot,
    ("boot", "pxe"): pxe_boot,
    ("deploy", "direct"): direct_deploy,
    ("deploy", "iscsi"): iscsi_deploy,
    ("deploy", "ramdisk"): ramdisk_deploy,
    ("inspect", "agent"): AgentInspect,
}


# Implementations sharing a client (one BMC session pool per protocol and process).
CLIENTS: dict[str, Callable[[Settings], Any]] = {
    "ipmi": _lazy("services.drivers.ipmi", "IpmiSessions"),
    "redfish": _lazy("services.drivers.redfish", "RedfishSessions"),
}
CLIENT_IMPLEMENTATIONS: dict[tuple[str, str],
                             tuple[str, Callable[[Any, Settings], Interface]]] = {
    ("power", "ipmi"): ("ipmi", _lazy("services.drivers.ipmi", "ipmi_power")),
    ("management", "ipmi"): ("ipmi", _lazy("services.drivers.ipmi", "ipmi_management")),
    ("power", "redfish"): ("redfish", _lazy("services.drivers.redfish", "redfish_power")),
    ("management", "redfish"): ("redfish", _lazy("services.drivers.redfish",
                                                 "redfish_management")),
    ("bios", "redfish"): ("redfish", _lazy("services.drivers.redfish_bios", "redfish_bios")),
    ("firmware", "redfish"): ("redfish", _lazy("services.drivers.redfish_firmware",
                                               "redfish_firmware")),
    ("raid", "redfish"): ("redfish", _lazy("services.drivers.redfish_raid", "redfish_raid")),
    ("boot", "redfish-virtual-media"): ("redfish", _lazy("services.drivers.boot.redfish_vmedia",
                                                         "redfish_virtual_media")),
}


class Drivers:
    """The enabled hardware types of a process, and the interface instances they need."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        unknown = [n for n in settings.drivers.enabled_hardware_types if n not in HARDWARE_TYPES]
        if unknown:
            raise UnknownHardwareType(f"unknown hardware types enabled: {', '.join(unknown)}")
        self.hardware_types = {n: HARDWARE_TYPES[n]
                               for n in settings.drivers.enabled_hardware_types}
        self._instances: dict[tuple[str, str], Interface] = {}
        self._clients: dict[str, Any] = {}

    def hardware_type(self, name: str) -> HardwareType:
        try:
            return self.hardware_types[name]
        except KeyError:
            raise UnknownHardwareType(f"Cannot find the hardware type {name}.") from None

    def implementation(self, interface: str, name: str) -> Interface:
        key = (interface, name)
        if key not in self._instances:
            if key in CLIENT_IMPLEMENTATIONS:
                client_name, make = CLIENT_IMPLEMENTATIONS[key]
                if client_name not in self._clients:
                    self._clients[client_name] = CLIENTS[client_name](self.settings)
                made = make(self._clients[client_name], self.settings)
            else:
                made = IMPLEMENTATIONS[key](self.settings)
            self._instances[key] = check_implementation(interface, made)
        return self._instances[key]

    def for_node(self, node: Node) -> NodeDriver:
        hardware_type = self.hardware_type(node.driver)
        chosen = {
            iface: getattr(node, f"{iface}_interface") or hardware_type.default(iface)
            for iface in INTERFACES
        }
        return NodeDriver(
            hardware_type, {iface: self.implementation(iface, n) for iface, n in chosen.items()}
        )
