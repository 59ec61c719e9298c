"""Which hardware types and interface implementations exist, and building them for a node."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.common.config import Settings
from services.common.models import INTERFACES, Node
from services.drivers import fake
from services.drivers.base import HardwareType, NodeDriver

FAKE_HARDWARE = HardwareType(
    name="fake-hardware",
    supported={
        "bios": ("no-bios", "fake"),
        "boot": ("fake",),
        "console": ("no-console", "fake"),
        "deploy": ("fake",),
        "firmware": ("no-firmware", "fake"),
        "inspect": ("no-inspect", "fake"),
        "management": ("fake",),
        "network": ("noop", "flat"),
        "power": ("fake",),
        "raid": ("no-raid", "fake"),
        "rescue": ("no-rescue", "fake"),
        "storage": ("noop",),
        "vendor": ("no-vendor", "fake"),
    },
)

HARDWARE_TYPES: dict[str, HardwareType] = {hw.name: hw for hw in (FAKE_HARDWARE,)}

Factory = Callable[[Settings], Any]


def _null(_settings: Settings) -> Any:
    return fake.NullInterface()


def _working(_settings: Settings) -> Any:
    """An implementation that validates and has nothing to do (fake bios, noop storage ...)."""
    return fake.FakeInterface()


IMPLEMENTATIONS: dict[tuple[str, str], Factory] = {
    ("power", "fake"): lambda s: fake.FakePower(s.fake_power_delay_s),
    ("management", "fake"): lambda s: fake.FakeManagement(s.fake_management_delay_s),
    ("boot", "fake"): lambda s: fake.FakeBoot(s.fake_boot_delay_s),
    ("deploy", "fake"): lambda s: fake.FakeDeploy(s.fake_deploy_delay_s),
    ("network", "noop"): lambda s: fake.NoopNetwork(s.fake_network_delay_s),
    ("network", "flat"): lambda s: fake.FakeNetwork(s.fake_network_delay_s),
    ("inspect", "fake"): lambda s: fake.FakeInspect(s.fake_deploy_delay_s),
    ("inspect", "no-inspect"): _null,
    **{(iface, "fake"): _working for iface in ("bios", "console", "firmware", "raid", "rescue",
                                                "vendor")},
    **{(iface, f"no-{iface}"): _null for iface in ("bios", "console", "firmware", "raid",
                                                  "rescue", "vendor")},
    ("storage", "noop"): _working,
}


class UnknownHardwareType(LookupError):
    pass


class Drivers:
    """The enabled hardware types of a process, and the interface instances they need."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        unknown = [n for n in settings.enabled_hardware_types if n not in HARDWARE_TYPES]
        if unknown:
            raise UnknownHardwareType(f"unknown hardware types enabled: {', '.join(unknown)}")
        self.hardware_types = {n: HARDWARE_TYPES[n] for n in settings.enabled_hardware_types}
        self._instances: dict[tuple[str, str], Any] = {}

    def hardware_type(self, name: str) -> HardwareType:
        try:
            return self.hardware_types[name]
        except KeyError:
            raise UnknownHardwareType(f"Cannot find the hardware type {name}.") from None

    def implementation(self, interface: str, name: str) -> Any:
        key = (interface, name)
        if key not in self._instances:
            self._instances[key] = IMPLEMENTATIONS[key](self.settings)
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
