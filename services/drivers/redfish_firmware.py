"""The ``redfish`` firmware interface, on sushy: the ``bios`` component is the system's
``BiosVersion``, ``bmc`` its first manager's ``FirmwareVersion``; ``update`` asks the update
service for a ``SimpleUpdate`` of each component's image URL targeting the system (bios) or the
manager (bmc). A BMC that refuses answers with its reason, which fails the step. A version
that has not changed after the update is given a reboot (BIOS updates apply at boot) and read
again; still unchanged, the step fails. The BMC's task monitor is not followed: a BMC whose
update runs for long after it answered is read too early.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.common.config import Settings
from services.drivers.base import DriverError, FirmwareInterface
from services.drivers.firmware import requested_updates
from services.drivers.redfish import RedfishSessions, access_of

if TYPE_CHECKING:
    import sushy
    from sushy.resources.system.system import System

    from services.conductor.task import Task


def _versions(system: System) -> dict[str, str | None]:
    managers = system.managers
    return {"bios": system.bios_version,
            "bmc": managers[0].firmware_version if managers else None}


def _identities(system: System) -> dict[str, dict[str, str | None]]:
    """As Ironic's redfish firmware: the BMC's model is its manager's, nothing else known."""
    managers = system.managers
    unknown: dict[str, str | None] = {"vendor": None, "model": None, "serial_number": None}
    return {"bios": dict(unknown),
            "bmc": {**unknown, "model": managers[0].model if managers else None}}


def _target(system: System, component: str) -> str:
    if component == "bios":
        return str(system.path)
    managers = system.managers
    if not managers:
        raise DriverError("the BMC names no manager for this system: no bmc to update")
    return str(managers[0].path)


class RedfishFirmware(FirmwareInterface):
    def __init__(self, sessions: RedfishSessions, settings: Settings) -> None:
        self.sessions = sessions

    def validate(self, task: Task) -> None:
        access_of(task.node.driver_info)

    def read_components(self, task: Task) -> dict[str, str | None]:
        return self.sessions.run(access_of(task.node.driver_info), "read firmware versions",
                                 _versions)

    def read_identities(self, task: Task) -> dict[str, dict[str, str | None]]:
        return self.sessions.run(access_of(task.node.driver_info),
                                 "read firmware identities", _identities)

    def update(self, task: Task, settings: list[dict[str, Any]]) -> None:
        access = access_of(task.node.driver_info)
        for component, url in requested_updates(settings):
            before = self.read_components(task).get(component)

            def simple_update(connection: sushy.Sushy, system: System,
                              component: str = component, url: str = url) -> None:
                connection.get_update_service().simple_update(
                    url, targets=[_target(system, component)])

            self.sessions.run_on_service(access, f"update the {component} firmware",
                                         simple_update)
            if self.read_components(task).get(component) != before:
                continue
            task.driver.power.reboot(task)
            if self.read_components(task).get(component) == before:
                raise DriverError(f"the BMC accepted the {component} update from {url} but "
                                  f"the {component} version is still {before!r} after a "
                                  f"reboot")


def redfish_firmware(sessions: RedfishSessions, settings: Settings) -> RedfishFirmware:
    return RedfishFirmware(sessions, settings)
