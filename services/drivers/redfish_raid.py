"""The ``redfish`` raid interface, on sushy: the system's ``Storage`` resources, their drives
and ``Volumes``, as Ironic's redfish RAID interface uses them.

``create_configuration`` makes one volume a logical disk of the node's target: on the storage
named by its ``controller`` (else the first storage that has the drives), of its
``physical_disks`` (else the first free drives of its ``disk_type``/``interface_type``, as many
as its ``number_of_physical_disks`` or its RAID level's minimum), with Ironic's payload
(``RAIDType``, ``CapacityBytes`` unless ``MAX``, ``Links.Drives``, ``Name``). Whether the size
fits the drives is the BMC's to say: a BMC that refuses a volume answers with its reason, which
fails the step. ``delete_configuration`` deletes every volume that has a RAID type. Both then
record the volumes the BMC lists in ``raid_config``. A BMC that takes a request as a task to
apply at the next reset (``202``) gets one reboot through the node's power interface before
the volumes are read; its task monitor is not followed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sushy
from sushy import exceptions as sushy_exceptions

from services.common.config import Settings
from services.drivers.base import DriverError, RaidInterface
from services.drivers.raid import record, target_disks
from services.drivers.redfish import RedfishSessions, access_of

if TYPE_CHECKING:
    from sushy.resources.system.storage.drive import Drive
    from sushy.resources.system.storage.storage import Storage
    from sushy.resources.system.system import System

    from services.conductor.task import Task

GIB = 1024 ** 3
# Ironic's RAID level -> (Redfish RAIDType, fewest drives, most drives).
RAID_LEVELS = {"0": ("RAID0", 1, 1000), "1": ("RAID1", 2, 2), "5": ("RAID5", 3, 1000),
               "6": ("RAID6", 4, 1000), "1+0": ("RAID10", 4, 1000),
               "5+0": ("RAID50", 6, 1000), "6+0": ("RAID60", 8, 1000)}
LEVEL_OF = {raid_type: level for level, (raid_type, _low, _high) in RAID_LEVELS.items()}


def _raid_storages(system: System) -> list[Storage]:
    """The storages whose controller can make RAID volumes (not one that lists no type)."""
    storages = []
    for storage in system.storage.get_members():
        controllers = storage.storage_controllers or []
        if controllers and controllers[0].raid_types == []:
            continue
        storages.append(storage)
    return storages


def _level(disk: dict[str, Any]) -> tuple[str, int, int]:
    level = str(disk["raid_level"])
    if level not in RAID_LEVELS:
        raise DriverError(f"RAID level {level} is not supported by the driver. Supported RAID "
                          f"levels: {', '.join(RAID_LEVELS)}")
    return RAID_LEVELS[level]


def _fits(drive: Drive, disk: dict[str, Any]) -> bool:
    media = str(drive.media_type or "").lower()
    protocol = str(getattr(drive.protocol, "value", drive.protocol) or "").lower()
    return (disk.get("disk_type", media) == media
            and disk.get("interface_type", protocol) == protocol)


def _choose(storages: list[Storage], disk: dict[str, Any], used: set[str]
            ) -> tuple[Storage, list[Drive]]:
    """The storage and drives of a logical disk; DriverError naming what the node has."""
    _raid_type, fewest, most = _level(disk)
    wanted = disk.get("controller")
    candidates = [s for s in storages if wanted in (None, s.identity)]
    if not candidates:
        raise DriverError(f"No storage controller {wanted!r} with RAID on the node; it has "
                          f"{', '.join(s.identity for s in storages) or 'none'}")
    named = disk.get("physical_disks")
    count = disk.get("number_of_physical_disks", fewest)
    for storage in candidates:
        drives = storage.drives
        if named:
            chosen = [d for d in drives if d.identity in named]
            if len(chosen) == len(named):
                return storage, chosen
            continue
        free = [d for d in drives if d.identity not in used and _fits(d, disk)]
        if fewest <= count <= most and len(free) >= count:
            return storage, free[:count]
    raise DriverError(f"failed to find matching physical disks for the logical disk {disk} "
                      f"on {', '.join(s.identity for s in candidates)}")


def _payload(disk: dict[str, Any], drives: list[Drive]) -> dict[str, Any]:
    payload: dict[str, Any] = {"RAIDType": _level(disk)[0],
                               "Links": {"Drives": [{"@odata.id": d.path} for d in drives]}}
    if disk["size_gb"] != "MAX":
        payload["CapacityBytes"] = int(disk["size_gb"]) * GIB
    if disk.get("volume_name"):
        payload["Name"] = disk["volume_name"]
    return payload


def _apply_time(storage: Storage) -> Any:
    support = storage.volumes.operation_apply_time_support
    values = (support.mapped_supported_values or []) if support else []
    for wanted in (sushy.APPLY_TIME_IMMEDIATE, sushy.APPLY_TIME_ON_RESET):
        if wanted in values:
            return wanted
    return None


def _is_task(answer: Any) -> bool:
    return answer is not None and hasattr(answer, "task_monitor_uri")


def _volumes(storage: Storage) -> list[Any]:
    try:
        return list(storage.volumes.get_members())
    except sushy_exceptions.MissingAttributeError:
        return []  # a storage without a Volumes collection


def _logical_disks(system: System) -> list[dict[str, Any]]:
    """The RAID volumes the BMC lists, as Ironic's ``update_raid_config`` records them."""
    return [{"id": volume.identity, "name": volume.name, "controller": storage.identity,
             "size_gb": int((volume.capacity_bytes or 0) / GIB),
             "raid_level": LEVEL_OF.get(volume.raid_type.value, volume.raid_type.value)}
            for storage in system.storage.get_members() for volume in _volumes(storage)
            if volume.raid_type]


def _delete_all(system: System) -> bool:
    """Delete every RAID volume; True when the BMC applies one at the next reset."""
    pending = False
    for storage in system.storage.get_members():
        for volume in _volumes(storage):
            if volume.raid_type:
                pending |= _is_task(volume.delete(apply_time=_apply_time(storage)))
    return pending


class RedfishRaid(RaidInterface):
    def __init__(self, sessions: RedfishSessions, settings: Settings) -> None:
        self.sessions = sessions

    def validate(self, task: Task) -> None:
        access_of(task.node.driver_info)
        super().validate(task)

    def validate_raid_config(self, task: Task, raid_config: dict[str, Any]) -> None:
        super().validate_raid_config(task, raid_config)
        if any(disk.get("interface_type") == "scsi" for disk in raid_config["logical_disks"]):
            raise DriverError("interface type `scsi` not supported by Redfish RAID")

    def create_configuration(self, task: Task, create_root_volume: bool = True,
                             create_nonroot_volumes: bool = True,
                             delete_existing: bool = False) -> None:
        disks = target_disks(task, create_root_volume, create_nonroot_volumes)
        for disk in disks:
            _level(disk)

        def create(system: System) -> bool:
            pending = _delete_all(system) if delete_existing else False
            storages, used = _raid_storages(system), set()
            for disk in disks:
                storage, drives = _choose(storages, disk, used)
                if not disk.get("share_physical_disks"):
                    used.update(d.identity for d in drives)
                pending |= _is_task(storage.volumes.create(
                    _payload(disk, drives), apply_time=_apply_time(storage)))
            return pending

        self._then_record(task, "create RAID volumes", create)

    def delete_configuration(self, task: Task) -> None:
        self._then_record(task, "delete RAID volumes", _delete_all)

    def _then_record(self, task: Task, what: str, change: Any) -> None:
        access = access_of(task.node.driver_info)
        if self.sessions.run(access, what, change):
            task.driver.power.reboot(task)  # the BMC applies the volumes at the next reset
        record(task, self.sessions.run(access, "read RAID volumes", _logical_disks))


def redfish_raid(sessions: RedfishSessions, settings: Settings) -> RedfishRaid:
    return RedfishRaid(sessions, settings)
