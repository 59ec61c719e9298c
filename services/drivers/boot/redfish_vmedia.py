"""The ``redfish-virtual-media`` boot interface: the deploy ramdisk boots from an ISO the BMC
inserts in the system's virtual CD, for sites where the machines cannot boot from the network.

``prepare_ramdisk`` builds the node's ISO (services/drivers/boot/vmedia_iso.py: the deploy
kernel and ramdisk, fetched from their URLs as the ``ipxe`` interface names them, with the same
kernel command line), writes it into the boot service's files directory as
``vmedia/<node uuid>.iso`` and has the BMC insert it from the boot service's URL, then sets a
one-time boot from CD. The BMC downloads the ISO itself: one that cannot reach the boot URL
fails the operation with its own words and what to check. ``prepare_instance`` ejects it and
boots from disk; ``clean_up_*`` eject it and remove the file. Sushy finds the CD among the
system's virtual media (else its managers'), as Ironic's ``redfish-virtual-media`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sushy import exceptions as sushy_exceptions

from services.common.bootconfig.files import served_url
from services.common.config import Settings
from services.drivers.base import BootInterface, DriverError
from services.drivers.boot import vmedia_iso
from services.drivers.boot.ipxe import (
    DEPLOY_FILES,
    agent_kernel_params,
    can_set_boot_device,
    check_reachable,
    deploy_file_url,
)
from services.drivers.boot_mode import boot_mode
from services.drivers.driver_info import InvalidParameter
from services.drivers.redfish import RedfishSessions, access_of
from services.drivers.redfish_media import drive_of
from services.drivers.url_download import download

if TYPE_CHECKING:
    from sushy.resources.system.system import System

    from services.conductor.task import Task

ISO_DIRECTORY = "vmedia"


class RedfishVirtualMediaBoot(BootInterface):
    def __init__(self, sessions: RedfishSessions, settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    def validate(self, task: Task) -> None:
        access_of(task.node.driver_info)
        if boot_mode(task.node, self.settings) != "uefi":
            raise InvalidParameter(
                "redfish-virtual-media boots the deploy ISO in UEFI mode only (it has no "
                "legacy BIOS boot loader): set capabilities boot_mode:uefi.")
        for key in DEPLOY_FILES:
            check_reachable(self.settings, key, deploy_file_url(self.settings, task, key))
        agent_kernel_params(self.settings, task)
        if missing := vmedia_iso.missing_tools():
            raise DriverError(f"redfish-virtual-media needs {', '.join(missing)} on the "
                              f"conductor.")

    # -- the ISO ---------------------------------------------------------------------------

    def _iso_name(self, task: Task) -> str:
        return f"{ISO_DIRECTORY}/{task.node.uuid}.iso"

    def _iso_path(self, task: Task) -> Path:
        return self.settings.effective_boot_files_dir / self._iso_name(task)

    def _download(self, key: str, url: str, out: Path) -> None:
        download(key, url, out, self.settings.boot.file_check_timeout_s)

    def _build_iso(self, task: Task) -> str:
        """Build the node's ISO; the URL the BMC fetches it from."""
        path = self._iso_path(task)
        path.parent.mkdir(parents=True, exist_ok=True)
        kernel, ramdisk = path.with_suffix(".kernel"), path.with_suffix(".ramdisk")
        try:
            self._download("deploy_kernel", deploy_file_url(self.settings, task,
                                                            "deploy_kernel"), kernel)
            self._download("deploy_ramdisk", deploy_file_url(self.settings, task,
                                                             "deploy_ramdisk"), ramdisk)
            vmedia_iso.build(kernel, ramdisk, agent_kernel_params(self.settings, task), path)
        finally:
            kernel.unlink(missing_ok=True)
            ramdisk.unlink(missing_ok=True)
        return served_url(self.settings.effective_boot_url, self._iso_name(task))

    # -- the BMC ---------------------------------------------------------------------------

    def _insert(self, task: Task, url: str) -> None:
        access = access_of(task.node.driver_info)

        def insert(system: System) -> None:
            drive = drive_of(system, "cdrom")
            if drive.inserted:
                drive.eject_media()
            try:
                drive.insert_media(url, inserted=True, write_protected=True)
            except sushy_exceptions.HTTPError as exc:
                raise DriverError(
                    f"The BMC at {access.where} could not insert the virtual media ISO {url}: "
                    f"{exc.message or exc}. The BMC downloads the ISO itself: it must reach "
                    f"the boot service at {self.settings.effective_boot_url} "
                    f"(ENCLUME_BOOT_PUBLIC_URL)."
                ) from None

        self.sessions.run(access, "insert virtual media", insert)

    def _eject(self, task: Task) -> None:
        def eject(system: System) -> Any:
            drive = drive_of(system, "cdrom")
            if drive.inserted:
                drive.eject_media()

        self.sessions.run(access_of(task.node.driver_info), "eject virtual media", eject)
        self._iso_path(task).unlink(missing_ok=True)

    # -- the four steps --------------------------------------------------------------------

    def prepare_ramdisk(self, task: Task) -> None:
        self._insert(task, self._build_iso(task))
        management = task.driver.management
        if can_set_boot_device(management):
            management.set_boot_device(task, "cdrom", persistent=False)

    def clean_up_ramdisk(self, task: Task) -> None:
        self._eject(task)

    def prepare_instance(self, task: Task) -> None:
        self._eject(task)
        management = task.driver.management
        if can_set_boot_device(management):
            management.set_boot_device(task, "disk", persistent=True)

    def clean_up_instance(self, task: Task) -> None:
        self._eject(task)


def redfish_virtual_media(sessions: RedfishSessions,
                          settings: Settings) -> RedfishVirtualMediaBoot:
    return RedfishVirtualMediaBoot(sessions, settings)
