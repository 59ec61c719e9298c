"""What the conductor keeps of a node's BIOS settings (``bios_settings``, served as
``/v1/nodes/{id}/bios``) and firmware versions (``firmware_information``, ``/firmware``): what
its bios and firmware interfaces last read, refreshed after verification and after cleaning, as
Ironic's ``cache_bios_settings`` and ``cache_firmware_components``. A machine that cannot be
read leaves its cache as it was and a warning in the node's history: the operation it follows
does not fail for it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import select

from services.common.models import BiosSetting, FirmwareComponent
from services.conductor.task import Task
from services.drivers.base import BIOS_REGISTRY_FIELDS, DriverError, UnsupportedDriverExtension

T = TypeVar("T")


def _read(task: Task, event_type: str, what: str, read: Callable[[Task], T]) -> T | None:
    try:
        return read(task)
    except DriverError as exc:
        task.record(event_type, f"Reading the {what} failed: {exc}", severity="WARNING")
        return None


def refresh(task: Task, event_type: str, flashed: Iterable[str] = ()) -> None:
    """The caches; ``flashed``: the firmware components an update step just flashed."""
    refresh_bios(task, event_type)
    refresh_firmware(task, event_type, set(flashed))
    refresh_boot_mode(task, event_type)


def refresh_boot_mode(task: Task, event_type: str) -> None:
    """The node's ``boot_mode`` and ``secure_boot`` (API 1.75) as the management interface
    reads them, None where it cannot tell (Ironic's ``node_cache_boot_mode``)."""
    management = task.driver.management
    values: list[Any] = []
    for what, read in (("boot mode", management.get_boot_mode),
                       ("secure boot state", management.get_secure_boot_state)):
        try:
            values.append(read(task))
        except UnsupportedDriverExtension:
            values.append(None)
        except DriverError as exc:
            task.record(event_type, f"Reading the {what} failed: {exc}", severity="WARNING")
            return
    task.node.boot_mode, task.node.secure_boot = values


def refresh_bios(task: Task, event_type: str) -> None:
    bios = task.driver.bios
    attributes = _read(task, event_type, "BIOS settings", bios.read_settings) \
        if bios.supported else None
    if attributes is not None:
        _sync(task, BiosSetting, "name", {
            attribute.name: {"value": attribute.value,
                             **{name: attribute.registry.get(name)
                                for name in BIOS_REGISTRY_FIELDS}}
            for attribute in attributes})


def refresh_firmware(task: Task, event_type: str, flashed: set[str]) -> None:
    firmware = task.driver.firmware
    versions = _read(task, event_type, "firmware versions", firmware.read_components) \
        if firmware.supported else None
    if versions is not None:
        identities = _read(task, event_type, "firmware identities",
                           firmware.read_identities) or {}
        _sync(task, FirmwareComponent, "component", {
            component: {"current_version": version,
                        **({"last_version_flashed": version} if component in flashed else {}),
                        **identities.get(component, {})}
            for component, version in versions.items()},
            first_seen=lambda values: {"initial_version": values["current_version"]})


def _sync(task: Task, model: type[BiosSetting] | type[FirmwareComponent], key: str,
          wanted: dict[str, dict[str, Any]],
          first_seen: Callable[[dict[str, Any]], dict[str, Any]] = lambda values: {}) -> None:
    """Make the node's rows of ``model`` those of ``wanted`` (key -> column values), writing
    only what changed; ``first_seen`` adds the columns a new row starts with."""
    rows = {getattr(row, key): row for row in task.session.scalars(
        select(model).where(model.node_id == task.node.id))}
    for name, values in wanted.items():
        row = rows.pop(name, None)
        if row is None:
            row = model(node_id=task.node.id, **{key: name}, **first_seen(values))
            task.session.add(row)
        for column, value in values.items():
            if getattr(row, column) != value:
                setattr(row, column, value)
    for gone in rows.values():
        task.session.delete(gone)
