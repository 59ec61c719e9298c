"""What discovery rules look at: facts read from a checked agent inventory.

Sizes come from the same code the ``agent`` inspect interface uses
(services/drivers/inspect/inventory.py), so a rule's ``memory_mb`` or ``local_gb`` is the value
the node's properties will hold.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from services.common import inventory as inspected
from services.common.macs import parse_mac


@dataclass(frozen=True)
class Facts:
    macs: tuple[str, ...]  # every interface's MAC, the booting one first
    boot_mac: str | None  # the MAC the machine network-booted from (inventory boot.pxe_interface)
    interface_names: tuple[str, ...]
    boot_interface: str | None
    boot_ipv4: str | None
    system_vendor: str | None
    system_product: str | None
    system_serial: str | None
    cpu_arch: str
    cpus: int
    memory_mb: int
    local_gb: int
    boot_mode: str | None
    bmc_address: str | None

    @classmethod
    def of(cls, inventory: dict[str, Any]) -> Facts:
        """The facts of an inventory that passed ``inventory.check``."""
        boot = inventory.get("boot") if isinstance(inventory.get("boot"), dict) else {}
        boot_mac = parse_mac(boot.get("pxe_interface"))
        macs = inspected.macs_of(inventory)
        if boot_mac in macs:
            macs = [boot_mac, *(mac for mac in macs if mac != boot_mac)]
        interfaces = [i for i in inventory["interfaces"] if isinstance(i.get("name"), str)]
        booted = next((i for i in interfaces if parse_mac(i.get("mac_address")) == boot_mac),
                      None)
        system = inventory.get("system_vendor")
        system = system if isinstance(system, dict) else {}
        sizes = inspected.properties_from(inventory, None)
        return cls(
            macs=tuple(macs), boot_mac=boot_mac if boot_mac in macs else None,
            interface_names=tuple(i["name"] for i in interfaces),
            boot_interface=booted["name"] if booted else None,
            boot_ipv4=_ipv4(booted.get("ipv4_address")) if booted else None,
            system_vendor=_text(system.get("manufacturer")),
            system_product=_text(system.get("product_name")),
            system_serial=_text(system.get("serial_number")),
            cpu_arch=sizes["cpu_arch"], cpus=sizes["cpus"], memory_mb=sizes["memory_mb"],
            local_gb=sizes["local_gb"], boot_mode=_text(boot.get("current_boot_mode")),
            bmc_address=_ip(inventory.get("bmc_address")),
        )

    @property
    def main_mac(self) -> str | None:
        return self.boot_mac or (self.macs[0] if self.macs else None)

    def variables(self) -> dict[str, str | None]:
        """The values templates may use (``{name}``); None where the inventory has none."""
        mac = self.main_mac
        return {
            "mac": mac, "mac_hex": mac.replace(":", "") if mac else None,
            "interface": self.boot_interface, "ipv4_address": self.boot_ipv4,
            "bmc_address": self.bmc_address, "system_vendor": self.system_vendor,
            "system_product": self.system_product, "system_serial": self.system_serial,
            "cpu_arch": self.cpu_arch, "cpus": str(self.cpus),
            "memory_mb": str(self.memory_mb), "local_gb": str(self.local_gb),
            "boot_mode": self.boot_mode,
        }


# The names templates may use; the unit tests keep it equal to the keys of Facts.variables.
# ADDRESS_VARIABLES are network addresses the (untrusted) inventory claims; rules must confine
# them with a network condition before they go next to a secret in driver_info (rules.py).
VARIABLES = frozenset({
    "mac", "mac_hex", "interface", "ipv4_address", "bmc_address", "system_vendor",
    "system_product", "system_serial", "cpu_arch", "cpus", "memory_mb", "local_gb", "boot_mode",
})


# An address variable -> the rule condition that confines it to the operator's networks.
ADDRESS_VARIABLES = {"bmc_address": "bmc_network", "ipv4_address": "ipv4_network"}


def _ip(value: Any) -> str | None:
    """A bare IP address (no port, host name or URL: the inventory is untrusted), normalised;
    None for anything else and for the unspecified address (0.0.0.0 means "no BMC")."""
    if not isinstance(value, str):
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    return None if address.is_unspecified else str(address)


def _ipv4(value: Any) -> str | None:
    address = _ip(value)
    return address if address is not None and ipaddress.ip_address(address).version == 4 else None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None
