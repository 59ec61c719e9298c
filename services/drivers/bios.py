"""The ``fake`` and ``no-bios`` bios interfaces, and what every bios interface checks of a
clean step's ``settings`` argument.

``fake`` keeps its "firmware" in ``driver_internal_info["fake_bios"]`` (name -> value, starting
from ``FAKE_DEFAULTS``) and answers as a strict BMC does: an unknown setting, a read-only one or
a value outside its allowable values is refused with the reason, nothing applied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.drivers.base import BiosAttribute, BiosInterface, DriverError

if TYPE_CHECKING:
    from services.conductor.task import Task

FAKE_BIOS = "fake_bios"
_ENABLED = ["Enabled", "Disabled"]
# name -> (default value, registry entry)
FAKE_DEFAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "BootMode": ("Uefi", {"attribute_type": "Enumeration", "allowable_values": ["Bios", "Uefi"],
                          "read_only": False, "reset_required": True}),
    "ProcVirtualization": ("Enabled", {"attribute_type": "Enumeration",
                                       "allowable_values": _ENABLED, "read_only": False,
                                       "reset_required": True}),
    "HyperThreading": ("Enabled", {"attribute_type": "Enumeration",
                                   "allowable_values": _ENABLED, "read_only": False,
                                   "reset_required": True}),
    "SerialNumber": ("FAKE-0001", {"attribute_type": "String", "read_only": True,
                                   "max_length": 16, "min_length": 1}),
}


def requested_settings(settings: Any) -> dict[str, str]:
    """The ``settings`` argument of ``bios.apply_configuration`` (a list of ``{"name",
    "value"}``, as Ironic takes it) as name -> value, or DriverError naming what is wrong."""
    if not isinstance(settings, list) or not settings:
        raise DriverError('bios.apply_configuration needs "settings": a non-empty list of '
                          '{"name": ..., "value": ...}.')
    wanted: dict[str, str] = {}
    for setting in settings:
        if not isinstance(setting, dict) or not isinstance(setting.get("name"), str) \
                or "value" not in setting:
            raise DriverError(f'Each BIOS setting needs a "name" and a "value", not '
                              f"{setting!r}.")
        wanted[setting["name"]] = str(setting["value"])
    return wanted


def not_applied(wanted: dict[str, str], read: list[BiosAttribute]) -> dict[str, str | None]:
    """The wanted settings the machine does not read back, with what it reads instead."""
    current = {attribute.name: attribute.value for attribute in read}
    return {name: current.get(name) for name, value in wanted.items()
            if current.get(name) != value}


class NoBios(BiosInterface):
    """``no-bios``: the node has no bios interface."""

    supported = False

    def validate(self, task: Task) -> None:
        return None

    def read_settings(self, task: Task) -> list[BiosAttribute]:
        return []

    def apply_configuration(self, task: Task, settings: list[dict[str, Any]]) -> None:
        raise DriverError("The node's bios interface is no-bios: it cannot change settings.")

    def factory_reset(self, task: Task) -> None:
        raise DriverError("The node's bios interface is no-bios: it cannot reset settings.")


class FakeBios(BiosInterface):
    def validate(self, task: Task) -> None:
        return None

    def _current(self, task: Task) -> dict[str, str]:
        stored = task.node.driver_internal_info.get(FAKE_BIOS)
        return dict(stored) if isinstance(stored, dict) else {
            name: value for name, (value, _registry) in FAKE_DEFAULTS.items()}

    def read_settings(self, task: Task) -> list[BiosAttribute]:
        return [BiosAttribute(name, value, dict(FAKE_DEFAULTS.get(name, ("", {}))[1]))
                for name, value in sorted(self._current(task).items())]

    def apply_configuration(self, task: Task, settings: list[dict[str, Any]]) -> None:
        wanted = requested_settings(settings)
        for name, value in wanted.items():
            if name not in FAKE_DEFAULTS:
                raise DriverError(f"fake BIOS refused {name}: no such attribute")
            registry = FAKE_DEFAULTS[name][1]
            if registry.get("read_only"):
                raise DriverError(f"fake BIOS refused {name}: the attribute is read-only")
            allowed = registry.get("allowable_values")
            if allowed and value not in allowed:
                raise DriverError(f"fake BIOS refused {name}={value}: allowed values are "
                                  f"{', '.join(allowed)}")
        task.update_internal_info(**{FAKE_BIOS: {**self._current(task), **wanted}})

    def factory_reset(self, task: Task) -> None:
        task.pop_internal_info(FAKE_BIOS)
