"""The ``redfish-virtual-media`` boot interface: the deploy ramdisk boots from an ISO the BMC
inserts in the system's virtual CD, for sites where the machines cannot boot from the network;
with the ``ramdisk`` deploy interface, the diskless instance boots from one too.

``prepare_ramdisk`` has the node's deploy ISO (services/drivers/boot/vmedia_iso.py: the deploy
kernel and ramdisk, fetched from their URLs as the ``ipxe`` interface names them, with the same
kernel command line) served from the boot service's files directory as ``vmedia/<node
uuid>.iso``, from the conductor's ISO cache or built into it (vmedia_cache.py), has the BMC
insert it from the boot service's URL, then sets a one-time boot from CD. The BMC downloads the
ISO itself: one that cannot reach the boot URL fails the operation with its own words and what
to check, and nothing stays inserted. ``prepare_instance`` ejects it and boots from disk; for a
diskless node (``ramdisk`` deploy) it inserts the instance's ISO instead and boots from CD,
persistently: ``instance_info/boot_iso`` as it is (the BMC fetches its URL), else an ISO made as
the deploy ISO of ``instance_info/kernel`` and ``ramdisk`` (or a catalogue version's, as Ironic
reads a Glance image's ``kernel_id``/``ramdisk_id``) with the instance's kernel command line
(services/drivers/boot/instance_ramdisk.py). ``clean_up_*`` eject it and remove the node's ISO.
Sushy finds the CD among the system's virtual media (else its managers'), as Ironic's
``redfish-virtual-media`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sushy import exceptions as sushy_exceptions

from services.common.bootconfig.files import served_url
from services.common.bootconfig.image_cache import shown_url
from services.common.config import Settings
from services.common.macs import parse_mac
from services.drivers.base import BootInterface, DriverError
from services.drivers.boot import instance_ramdisk, vmedia_iso
from services.drivers.boot.ipxe import (
    DEPLOY_FILES,
    agent_kernel_params,
    can_set_boot_device,
    check_reachable,
    deploy_file_url,
    is_diskless,
)
from services.drivers.boot.vmedia_cache import IsoCache
from services.drivers.boot_mode import boot_mode
from services.drivers.driver_info import InvalidParameter
from services.drivers.redfish import RedfishSessions, access_of
from services.drivers.redfish_media import drive_of

if TYPE_CHECKING:
    from sushy.resources.system.system import System

    from services.conductor.task import Task



class RedfishVirtualMediaBoot(BootInterface):
    ramdisk_boot = True  # a diskless instance boots from its ISO

    def __init__(self, sessions: RedfishSessions, settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self.isos = IsoCache(settings)

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
        if is_diskless(task):  # the files the conductor (or, for boot_iso, the BMC) fetches
            for key, url in instance_ramdisk.instance_files(self.settings, task.node).items():
                check_reachable(self.settings, f"instance {key}", url)

    # -- the ISOs --------------------------------------------------------------------------

    def _deploy_iso(self, task: Task) -> str:
        """The node's deploy ISO, served; the URL the BMC fetches it from."""
        files = {key: deploy_file_url(self.settings, task, key) for key in DEPLOY_FILES}
        shared = any(parse_mac(port.address) for port in task.node.ports)
        params = agent_kernel_params(self.settings, task, by_mac=shared)
        return self._publish(task, files, params, "deploy")

    def _instance_iso(self, task: Task) -> str:
        files = instance_ramdisk.instance_files(self.settings, task.node)
        if instance_ramdisk.BOOT_ISO in files:
            return files[instance_ramdisk.BOOT_ISO]
        params = instance_ramdisk.instance_kernel_params(self.settings, task.node)
        return self._publish(task, {f"instance {key}": url for key, url in files.items()},
                             params, "instance")

    def _publish(self, task: Task, files: dict[str, str], params: str, what: str) -> str:
        published = self.isos.publish(task.node.uuid, files, params)
        task.record("provisioning", (
            f"The {what} ISO {published.key} was "
            f"{'reused from the cache' if published.reused else 'built'}."), severity="INFO")
        return served_url(self.settings.effective_boot_url, published.url_name)

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
                    f"The BMC at {access.where} could not insert the virtual media ISO "
                    f"{shown_url(url)}: "
                    f"{exc.message or exc}. The BMC downloads the ISO itself: it must reach "
                    f"{self._reach_hint(url)}."
                ) from None

        try:
            self.sessions.run(access, "insert virtual media", insert)
        except DriverError:
            self.isos.withdraw(task.node.uuid)  # nothing inserted, nothing left served
            raise

    def _reach_hint(self, url: str) -> str:
        boot_url = self.settings.effective_boot_url
        if url.startswith(boot_url.rstrip("/") + "/"):
            return f"the boot service at {boot_url} (ENCLUME_BOOT_PUBLIC_URL)"
        return "that URL (instance_info/boot_iso)"

    def _eject(self, task: Task) -> None:
        def eject(system: System) -> Any:
            drive = drive_of(system, "cdrom")
            if drive.inserted:
                drive.eject_media()

        self.sessions.run(access_of(task.node.driver_info), "eject virtual media", eject)
        self.isos.withdraw(task.node.uuid)

    # -- the four steps --------------------------------------------------------------------

    def prepare_ramdisk(self, task: Task) -> None:
        self._insert(task, self._deploy_iso(task))
        management = task.driver.management
        if can_set_boot_device(management):
            management.set_boot_device(task, "cdrom", persistent=False)

    def clean_up_ramdisk(self, task: Task) -> None:
        self._eject(task)

    def prepare_instance(self, task: Task) -> None:
        self._eject(task)
        management = task.driver.management
        if is_diskless(task):
            self._insert(task, self._instance_iso(task))
            if can_set_boot_device(management):
                management.set_boot_device(task, "cdrom", persistent=True)
            return
        if can_set_boot_device(management):
            management.set_boot_device(task, "disk", persistent=True)

    def clean_up_instance(self, task: Task) -> None:
        self._eject(task)


def redfish_virtual_media(sessions: RedfishSessions,
                          settings: Settings) -> RedfishVirtualMediaBoot:
    return RedfishVirtualMediaBoot(sessions, settings)
