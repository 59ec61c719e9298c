"""The ``ipxe`` and ``pxe`` boot interfaces: they write what the boot service answers a node.

The desired boot of a node lives in the database, ``driver_internal_info["boot"]``, so that
it survives a conductor takeover and every boot service of the node's network reads the same:

- ``prepare_ramdisk``: ``{"mode": "ramdisk", "kernel": URL, "ramdisk": URL, "kernel_params":
  "enclume.api_url=... enclume.node=<uuid> ...", "boot_mode": "bios"|"uefi", "boot_loader":
  "ipxe"|"pxe"}``, and the next boot from the network (non persistent) where the management
  interface can set it;
- ``prepare_instance`` of a diskless node (the ``ramdisk`` deploy interface): ``{"mode":
  "instance", ...}`` (``instance_ramdisk.py``), the next boots from the network (persistent);
- ``prepare_instance`` of others: where the management interface can set the boot device,
  boot from disk (persistent) and no desired boot; where it cannot (``noop``: machines that
  always boot from the network first), ``{"mode": "local", ...}`` so that the boot service
  tells them to boot their disk;
- ``clean_up_ramdisk``, ``clean_up_instance``: no desired boot (the boot service does not answer).

Each change is committed at once, so the boot service sees it before the machine is powered on.
The kernel parameters (``enclume.api_url``, ``enclume.node``, then ``driver_info/
kernel_append_params`` or ENCLUME_KERNEL_APPEND_PARAMS) are defined in
``services.common.bootconfig.params``.

``ipxe`` and ``pxe`` differ as in Ironic in how the firmware gets to the boot loader, recorded
as ``boot_loader``: with ``ipxe``, firmware that already runs iPXE is given the HTTP script
directly (others load iPXE over TFTP first); with ``pxe`` the firmware's own PXE client always
loads the iPXE binary over TFTP first. Both then fetch the same per-node iPXE script over HTTP;
Enclume has no PXELINUX/GRUB configuration files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from services.common.bootconfig import params
from services.common.bootconfig.entry import BOOT_KEY
from services.common.bootconfig.files import served_url
from services.common.bootconfig.image_cache import shown_url
from services.common.config import Settings
from services.common.macs import parse_mac
from services.drivers.base import (
    BootInterface,
    DeployInterface,
    DriverError,
    ManagementInterface,
    MissingParameters,
)
from services.drivers.boot import instance_ramdisk
from services.drivers.boot_mode import boot_mode
from services.drivers.driver_info import InvalidParameter

if TYPE_CHECKING:
    from services.conductor.task import Task

DEPLOY_FILES = ("deploy_kernel", "deploy_ramdisk")
LOADERS = ("ipxe", "pxe")


def can_set_boot_device(management: ManagementInterface) -> bool:
    """False for management interfaces of machines that boot from the network by themselves."""
    return management.supported and management.can_set_boot_device


def check_reachable(settings: Settings, key: str, url: str) -> None:
    """DriverError unless ``url`` answers a HEAD with success."""
    try:
        response = httpx.head(url, timeout=settings.boot.file_check_timeout_s,
                              follow_redirects=True)
    except httpx.HTTPError as exc:
        raise DriverError(f"The {key} {shown_url(url)} cannot be reached: "
                          f"{type(exc).__name__}.") from None
    if response.status_code == 404:
        raise DriverError(f"The {key} {shown_url(url)} does not exist (HTTP 404).")
    if not response.is_success:
        raise DriverError(f"The {key} {shown_url(url)} answered HTTP "
                          f"{response.status_code}.")


def deploy_file_url(settings: Settings, task: Task, key: str) -> str:
    """The URL of the deploy kernel or ramdisk: driver_info, else the configured default."""
    configured = getattr(settings.deploy, key.removeprefix("deploy_"))
    value = task.node.driver_info.get(key) or configured
    if not value:
        raise MissingParameters(
            f"Node {task.node.uuid} has no {key}: set driver_info/{key} (an http(s) URL, "
            f"or the name of a file in the boot service's files directory) or "
            f"ENCLUME_{key.upper()}.")
    if not isinstance(value, str):
        raise InvalidParameter(f"{key} must be a string, not {value!r}.")
    try:
        return served_url(settings.effective_boot_url, value)
    except ValueError as exc:
        raise InvalidParameter(f"{key} {value!r} is not usable: {exc}.") from None


def agent_kernel_params(settings: Settings, task: Task, by_mac: bool = False) -> str:
    """The deploy ramdisk's kernel command line for this node (``by_mac``: without the node's
    UUID, for an ISO that nodes share; its agent looks the node up by its MACs)."""
    append = task.node.driver_info.get("kernel_append_params")
    if append is None:
        append = settings.deploy.kernel_append_params
    if not isinstance(append, str):
        raise InvalidParameter(f"kernel_append_params must be a string, not {append!r}.")
    try:
        return params.agent_kernel_params(settings.effective_agent_api_url, task.node.uuid,
                                          append, settings.agent_api_ca_url, by_mac)
    except params.UnsafeScriptValue as exc:
        raise InvalidParameter(f"{exc} (driver_info/kernel_append_params or "
                               f"ENCLUME_KERNEL_APPEND_PARAMS).") from None


def is_diskless(task: Task) -> bool:
    """The node's deploy interface boots its instance from the network (``ramdisk``)."""
    deploy = task.driver.interfaces.get("deploy")
    return isinstance(deploy, DeployInterface) and deploy.diskless


class NetworkBoot(BootInterface):
    """The boot interface ``loader`` ("ipxe" or "pxe"); see the module docstring."""

    ramdisk_boot = True

    def __init__(self, settings: Settings, loader: str) -> None:
        if loader not in LOADERS:
            raise ValueError(f"unknown boot loader {loader!r}")
        self.settings = settings
        self.loader = loader

    # -- validation ------------------------------------------------------------------------

    def validate(self, task: Task) -> None:
        self._check_ports(task)
        for key in DEPLOY_FILES:
            self._check_reachable(key, self._deploy_file_url(task, key))
        self._kernel_params(task)

    def _check_ports(self, task: Task) -> None:
        node = task.node
        if not node.ports:
            raise MissingParameters(
                f"Node {node.uuid} has no port: the boot service recognises a machine by the "
                f"MAC address of its ports. Create a port with the MAC of its boot NIC.")
        without_mac = [port.uuid for port in node.ports if parse_mac(port.address) is None]
        if without_mac:
            raise InvalidParameter(
                f"Port(s) {', '.join(without_mac)} of node {node.uuid} have no valid MAC "
                f"address; the boot service cannot recognise the machine by them.")
        if not any(port.pxe_enabled for port in node.ports):
            raise InvalidParameter(f"Node {node.uuid} has no port with pxe_enabled set: no "
                                   f"network interface it may boot from.")

    def _check_reachable(self, key: str, url: str) -> None:
        check_reachable(self.settings, key, url)

    # -- what the node boots ---------------------------------------------------------------

    def _deploy_file_url(self, task: Task, key: str) -> str:
        return deploy_file_url(self.settings, task, key)

    def _kernel_params(self, task: Task) -> str:
        return agent_kernel_params(self.settings, task)

    # -- the four steps --------------------------------------------------------------------

    def prepare_ramdisk(self, task: Task) -> None:
        desired = {
            "mode": "ramdisk",
            "kernel": self._deploy_file_url(task, "deploy_kernel"),
            "ramdisk": self._deploy_file_url(task, "deploy_ramdisk"),
            "kernel_params": self._kernel_params(task),
            "boot_mode": boot_mode(task.node, self.settings),
            "boot_loader": self.loader,
        }
        task.update_internal_info(**{BOOT_KEY: desired})
        task.commit()
        management = task.driver.management
        if can_set_boot_device(management):
            management.set_boot_device(task, "pxe", persistent=False)

    def clean_up_ramdisk(self, task: Task) -> None:
        self._forget(task)

    def prepare_instance(self, task: Task) -> None:
        management = task.driver.management
        if is_diskless(task):
            task.update_internal_info(**{BOOT_KEY: {
                **instance_ramdisk.desired_boot(self.settings, task.node),
                "boot_mode": boot_mode(task.node, self.settings), "boot_loader": self.loader}})
            task.commit()
            if can_set_boot_device(management):
                management.set_boot_device(task, "pxe", persistent=True)
            return
        if can_set_boot_device(management):
            management.set_boot_device(task, "disk", persistent=True)
            self._forget(task)
            return
        task.update_internal_info(**{BOOT_KEY: {
            "mode": "local", "boot_mode": boot_mode(task.node, self.settings),
            "boot_loader": self.loader}})
        task.commit()

    def clean_up_instance(self, task: Task) -> None:
        self._forget(task)

    def _forget(self, task: Task) -> None:
        if BOOT_KEY in task.node.driver_internal_info:
            task.pop_internal_info(BOOT_KEY)
            task.commit()


def ipxe_boot(settings: Settings) -> NetworkBoot:
    return NetworkBoot(settings, "ipxe")


def pxe_boot(settings: Settings) -> NetworkBoot:
    return NetworkBoot(settings, "pxe")
