"""The ``fake`` and ``no-raid`` raid interfaces, and how every raid interface records what the
machine has (Ironic's ``update_raid_info``).

``fake`` keeps its logical disks in the node's ``raid_config`` itself: creating adds the
target's disks (after the existing ones unless ``delete_existing``), deleting removes them all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.common import raid_config
from services.drivers.base import DriverError, RaidInterface
from services.drivers.boot_mode import capabilities

if TYPE_CHECKING:
    from services.conductor.task import Task


def record(task: Task, logical_disks: list[dict[str, Any]]) -> None:
    """The node's ``raid_config`` becomes ``logical_disks``; a root volume among them sets the
    node's ``local_gb`` (unless its size is MAX), ``root_device`` (its ``root_device_hint``)
    and the ``raid_level`` capability, as Ironic's ``update_raid_info``."""
    node = task.node
    node.raid_config = {"logical_disks": logical_disks,
                        "last_updated": str(datetime.now(UTC).replace(tzinfo=None))}
    roots = raid_config.root_volumes(node.raid_config)
    if not roots:
        return
    root = roots[0]
    properties = dict(node.properties or {})
    if root.get("size_gb") != "MAX":
        properties["local_gb"] = int(root["size_gb"])
    if "root_device_hint" in root:
        properties["root_device"] = root["root_device_hint"]
    merged = {**capabilities(node), "raid_level": str(root["raid_level"])}
    properties["capabilities"] = ",".join(f"{key}:{value}" for key, value in merged.items())
    node.properties = properties


def target_disks(task: Task, create_root_volume: bool, create_nonroot_volumes: bool
                 ) -> list[dict[str, Any]]:
    """The logical disks of the node's target a create step makes; DriverError (Ironic's
    text) when there is none."""
    try:
        return raid_config.filtered(task.node.uuid, task.node.target_raid_config or {},
                                    create_root_volume, create_nonroot_volumes)
    except ValueError as exc:
        raise DriverError(str(exc)) from None


class NoRaid(RaidInterface):
    """``no-raid``: the node has no raid interface (the API answers 404 for its RAID
    configuration, as Ironic's)."""

    supported = False

    def validate(self, task: Task) -> None:
        return None

    def validate_raid_config(self, task: Task, raid_config: dict[str, Any]) -> None:
        raise DriverError(f"Driver {task.node.driver} does not support raid (disabled or not "
                          f"implemented).")

    def create_configuration(self, task: Task, create_root_volume: bool = True,
                             create_nonroot_volumes: bool = True,
                             delete_existing: bool = False) -> None:
        self.validate_raid_config(task, {})

    def delete_configuration(self, task: Task) -> None:
        self.validate_raid_config(task, {})


class FakeRaid(RaidInterface):
    def create_configuration(self, task: Task, create_root_volume: bool = True,
                             create_nonroot_volumes: bool = True,
                             delete_existing: bool = False) -> None:
        disks = target_disks(task, create_root_volume, create_nonroot_volumes)
        existing = [] if delete_existing else list(
            (task.node.raid_config or {}).get("logical_disks") or [])
        record(task, existing + disks)

    def delete_configuration(self, task: Task) -> None:
        record(task, [])
