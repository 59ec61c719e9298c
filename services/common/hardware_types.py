"""Hardware types as data: which implementations each interface of a hardware type allows
(the first is the default), the driver_info keys it reads, the power states and boot devices.

Pure data, importing nothing heavy: the API and the CLI read it without importing a driver.
``services.drivers.registry`` maps the implementation names to classes; conductors register
the hardware types they enable (``conductor_hardware_interfaces``), and the API answers
``/v1/drivers`` and checks node interfaces from those registrations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common import driver_properties as properties

POWER_ON = "power on"
POWER_OFF = "power off"
REBOOT = "rebooting"
SOFT_POWER_OFF = "soft power off"
SOFT_REBOOT = "soft rebooting"
POWER_TARGETS = (POWER_ON, POWER_OFF, REBOOT, SOFT_POWER_OFF, SOFT_REBOOT)

BOOT_DEVICES = ("pxe", "disk", "cdrom", "bios", "safe", "wanboot", "uefi http")
# The devices virtual media can attach (Ironic's VMEDIA_DEVICES, API 1.89).
VMEDIA_DEVICES = ("disk", "cdrom", "floppy")

# The attribute registry's fields of a BIOS setting (Ironic 1.74), None when the BMC has none.
BIOS_REGISTRY_FIELDS = ("attribute_type", "allowable_values", "lower_bound", "max_length",
                        "min_length", "read_only", "reset_required", "unique", "upper_bound")


class UnknownHardwareType(LookupError):
    pass


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


FAKE_HARDWARE = HardwareType(
    name="fake-hardware",
    supported={
        "bios": ("no-bios", "fake"),
        "boot": ("fake", "ipxe", "pxe"),
        "console": ("no-console", "fake"),
        "deploy": ("fake", "direct", "iscsi", "ramdisk"),
        "firmware": ("no-firmware", "fake"),
        "inspect": ("no-inspect", "fake", "agent"),
        "management": ("fake",),
        "network": ("noop", "flat", "vlan"),
        "power": ("fake",),
        "raid": ("fake", "no-raid"),  # fake first, as Ironic's fake-hardware
        "rescue": ("no-rescue", "fake", "agent"),
        "storage": ("noop", "external"),
        "vendor": ("no-vendor", "fake"),
    },
    properties=properties.for_power("fake"),
)

# What real machines use besides power and management: the agent in the deploy ramdisk
# writes images (direct) or exports the disk for the conductor to write (iscsi); or nothing is
# written and the instance boots from the network (ramdisk: diskless machines).
_REAL_MACHINE = {
    "bios": ("no-bios",),
    "boot": ("ipxe", "pxe"),
    "console": ("no-console",),
    "deploy": ("direct", "iscsi", "ramdisk"),
    "firmware": ("no-firmware",),
    "inspect": ("agent", "no-inspect"),
    "network": ("noop", "flat", "vlan"),
    "raid": ("no-raid",),
    "rescue": ("no-rescue", "agent"),
    "storage": ("noop", "external"),
    "vendor": ("no-vendor",),
}

IPMI = HardwareType(name="ipmi", supported={
    **_REAL_MACHINE, "power": ("ipmi",), "management": ("ipmi", "noop"),
    "console": ("no-console", "ipmitool-socat", "ipmitool-shellinabox")},
    properties=properties.for_power("ipmi"))
REDFISH = HardwareType(name="redfish", supported={
    **_REAL_MACHINE, "power": ("redfish",), "management": ("redfish", "noop"),
    "bios": ("redfish", "no-bios"), "firmware": ("redfish", "no-firmware"),
    "raid": ("redfish", "no-raid"),
    "boot": ("ipxe", "pxe", "redfish-virtual-media")},
    properties=properties.for_power("redfish"))
WOL = HardwareType(name="wol", supported={
    **_REAL_MACHINE, "power": ("wol",), "management": ("noop",)},
    properties=properties.for_power("wol"))

HARDWARE_TYPES: dict[str, HardwareType] = {
    hw.name: hw for hw in (FAKE_HARDWARE, IPMI, REDFISH, WOL)}
