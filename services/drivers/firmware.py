"""The ``fake`` and ``no-firmware`` firmware interfaces, and what every firmware interface
checks of the ``update`` clean step's ``settings`` (Ironic's: ``[{"component", "url"}]``).

``fake`` keeps its components in ``driver_internal_info["fake_firmware"]`` (starting from
``FAKE_VERSIONS``); an update raises the component's minor version, as sushy-emulator's does,
and refuses a component it does not have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.drivers.base import DriverError, FirmwareInterface

if TYPE_CHECKING:
    from services.conductor.task import Task

FAKE_FIRMWARE = "fake_firmware"
FAKE_VERSIONS = {"bios": "1.0.0", "bmc": "1.0.0"}
COMPONENTS = ("bios", "bmc")


def requested_updates(settings: Any) -> list[tuple[str, str]]:
    """The (component, url) pairs of ``firmware.update``'s ``settings``, or DriverError."""
    if not isinstance(settings, list) or not settings:
        raise DriverError('firmware.update needs "settings": a non-empty list of '
                          '{"component": ..., "url": ...}.')
    updates = []
    for setting in settings:
        if not isinstance(setting, dict) or not isinstance(setting.get("component"), str) \
                or not isinstance(setting.get("url"), str):
            raise DriverError(f'Each firmware update needs a "component" and a "url", not '
                              f"{setting!r}.")
        if setting["component"] not in COMPONENTS:
            raise DriverError(f"Unknown firmware component {setting['component']!r}: the "
                              f"components are {', '.join(COMPONENTS)}.")
        updates.append((setting["component"], setting["url"]))
    return updates


def next_minor(version: str) -> str:
    parts = version.split(".")
    if len(parts) < 2 or not parts[1].isdigit():
        return f"{version}.1"
    parts[1] = str(int(parts[1]) + 1)
    return ".".join(parts)


class NoFirmware(FirmwareInterface):
    supported = False

    def validate(self, task: Task) -> None:
        return None

    def read_components(self, task: Task) -> dict[str, str | None]:
        return {}

    def update(self, task: Task, settings: list[dict[str, Any]]) -> None:
        raise DriverError("The node's firmware interface is no-firmware: it cannot update.")


class FakeFirmware(FirmwareInterface):
    def validate(self, task: Task) -> None:
        return None

    def read_components(self, task: Task) -> dict[str, str | None]:
        stored = task.node.driver_internal_info.get(FAKE_FIRMWARE)
        return dict(stored) if isinstance(stored, dict) else dict(FAKE_VERSIONS)

    def update(self, task: Task, settings: list[dict[str, Any]]) -> None:
        versions = self.read_components(task)
        for component, _url in requested_updates(settings):
            versions[component] = next_minor(str(versions[component]))
        task.update_internal_info(**{FAKE_FIRMWARE: versions})
