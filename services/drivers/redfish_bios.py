"""The ``redfish`` bios interface, on sushy: the system's Bios resource and its attribute
registry.

Settings go to the Bios ``@Redfish.Settings`` object; a BMC that refuses them answers the PATCH
with its reason, which the step's error carries. Many BMCs apply settings at the next boot only:
when the settings do not read back at once, the system is rebooted (through the node's power
interface) and read again; what still differs fails the step, with the BMC's messages about the
last update.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sushy import exceptions as sushy_exceptions

from services.common.config import Settings
from services.drivers.base import BiosAttribute, BiosInterface, DriverError
from services.drivers.bios import not_applied, requested_settings
from services.drivers.redfish import RedfishSessions, access_of

if TYPE_CHECKING:
    from sushy.resources.system.bios import Bios
    from sushy.resources.system.system import System

    from services.conductor.task import Task


def _registry_entries(bios: Bios) -> dict[str, dict[str, Any]]:
    """The attribute registry's fields by attribute name; empty when the BMC has none."""
    try:
        registry = bios.get_attribute_registry()
    except (sushy_exceptions.SushyError, KeyError, TypeError):
        return {}
    if registry is None or registry.registry_entries is None:
        return {}
    entries = {}
    for entry in registry.registry_entries.attributes or []:
        values = entry.allowable_values
        entries[entry.name] = {
            "attribute_type": entry.attribute_type,
            "allowable_values": [value.get("ValueName") for value in values
                                 if isinstance(value, dict)] if values else None,
            "lower_bound": entry.lower_bound, "max_length": entry.max_length,
            "min_length": entry.min_length, "read_only": entry.read_only,
            "reset_required": entry.reset_required, "unique": entry.unique,
            "upper_bound": entry.upper_bound}
    return entries


def _read(system: System) -> list[BiosAttribute]:
    bios = system.bios
    registry = _registry_entries(bios)
    return [BiosAttribute(name, None if value is None else str(value), registry.get(name, {}))
            for name, value in sorted((bios.attributes or {}).items())]


def _pending_changes(system: System) -> dict[str, Any]:
    bios = system.bios
    current = bios.attributes or {}
    return {name: value for name, value in (bios.pending_attributes or {}).items()
            if current.get(name) != value}


def _update_messages(system: System) -> str:
    """What the BMC said about the last settings update, if anything."""
    try:
        messages = system.bios.update_status.messages
    except (sushy_exceptions.SushyError, AttributeError, KeyError, TypeError):
        return ""
    texts = [str(getattr(message, "message", "") or "") for message in messages or []]
    return "; ".join(text for text in texts if text)


class RedfishBios(BiosInterface):
    def __init__(self, sessions: RedfishSessions, settings: Settings) -> None:
        self.sessions = sessions

    def validate(self, task: Task) -> None:
        access_of(task.node.driver_info)

    def read_settings(self, task: Task) -> list[BiosAttribute]:
        return self.sessions.run(access_of(task.node.driver_info), "read BIOS settings", _read)

    def apply_configuration(self, task: Task, settings: list[dict[str, Any]]) -> None:
        wanted = requested_settings(settings)
        access = access_of(task.node.driver_info)
        self.sessions.run(access, "set BIOS settings",
                          lambda system: system.bios.set_attributes(wanted))
        missing = not_applied(wanted, self.read_settings(task))
        if not missing:
            return
        task.driver.power.reboot(task)  # the BMC applies pending settings at boot
        missing = not_applied(wanted, self.read_settings(task))
        if missing:
            said = self.sessions.run(access, "read BIOS update status", _update_messages)
            reads = ", ".join(f"{name} reads {value!r} (asked {wanted[name]!r})"
                              for name, value in missing.items())
            raise DriverError(f"the BMC did not apply the BIOS settings after a reboot: "
                              f"{reads}" + (f"; the BMC says: {said}" if said else ""))

    def factory_reset(self, task: Task) -> None:
        access = access_of(task.node.driver_info)
        self.sessions.run(access, "reset BIOS settings", lambda system: system.bios.reset_bios())
        if self.sessions.run(access, "read pending BIOS settings", _pending_changes):
            task.driver.power.reboot(task)


def redfish_bios(sessions: RedfishSessions, settings: Settings) -> RedfishBios:
    return RedfishBios(sessions, settings)
