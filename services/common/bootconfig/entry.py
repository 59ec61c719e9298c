"""A node's desired boot: the schema the conductor's boot interfaces write and the boot service
reads.

The boot interfaces keep it in ``driver_internal_info["boot"]`` (``{"mode": "ramdisk", "kernel",
"ramdisk", "kernel_params", "boot_mode", "boot_loader"}`` for the deploy ramdisk, ``{"mode":
"instance", ...}`` with the same keys or with ``boot_iso`` for a diskless instance (the
``ramdisk`` deploy interface), or ``{"mode": "local", "boot_mode", "boot_loader"}``); a node
without it gets no boot answers. Every PXE-enabled port of a node with
a desired boot is a ``BootEntry``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger(__name__)

BOOT_KEY = "boot"
MODES = ("ramdisk", "instance", "local")
NETWORK_MODES = ("ramdisk", "instance")  # a kernel and ramdisk (or an ISO) fetched over HTTP
BOOT_MODES = ("bios", "uefi")


@dataclass(frozen=True, slots=True)
class BootEntry:
    """One MAC address that must get boot answers, and what its node should boot."""

    mac: str
    node_uuid: str
    mode: str  # "ramdisk" | "instance" | "local"
    boot_mode: str | None = None  # "bios" | "uefi"
    kernel: str | None = None
    ramdisk: str | None = None
    kernel_params: str = ""
    boot_iso: str | None = None  # mode "instance": an ISO booted instead of kernel and ramdisk


@dataclass(frozen=True)
class DesiredBoot:
    """Everything the boot service answers, at one moment.

    ``entries``: the MACs to answer, by MAC. ``quiet_macs``: MACs of known nodes that must not
    be answered; read only with discovery on, when MACs unknown to the database are answered
    (discovery) and known nodes without a desired boot must still get nothing.
    """

    entries: Mapping[str, BootEntry] = field(default_factory=dict)
    quiet_macs: frozenset[str] = frozenset()
    discovery: bool = False

    def answers(self, mac: str) -> bool:
        if mac in self.entries:
            return True
        return self.discovery and mac not in self.quiet_macs


def boot_entry(mac: str, node_uuid: str, boot: Any) -> BootEntry | None:
    """The entry of one port, or None (with a warning) when the desired boot is unusable."""
    if not isinstance(boot, Mapping):
        if boot is not None:
            LOG.warning("node %s: driver_internal_info.boot is not an object, ignored", node_uuid)
        return None
    mode = boot.get("mode")
    boot_mode = boot.get("boot_mode")
    if mode not in MODES:
        LOG.warning("node %s: unknown boot mode %r, no boot answers", node_uuid, mode)
        return None
    if boot_mode is not None and boot_mode not in BOOT_MODES:
        LOG.warning("node %s: unknown boot_mode %r, no boot answers", node_uuid, boot_mode)
        return None
    kernel, ramdisk = boot.get("kernel"), boot.get("ramdisk")
    boot_iso = boot.get("boot_iso") if mode == "instance" else None
    has_kernel = isinstance(kernel, str) and isinstance(ramdisk, str) and kernel and ramdisk
    if boot_iso is not None and not (isinstance(boot_iso, str) and boot_iso):
        LOG.warning("node %s: boot_iso is not a URL, no boot answers", node_uuid)
        return None
    if mode in NETWORK_MODES and not (has_kernel or boot_iso):
        LOG.warning("node %s: %s boot without kernel and ramdisk URLs, no boot answers",
                    node_uuid, mode)
        return None
    params = boot.get("kernel_params") or ""
    network = mode in NETWORK_MODES and not boot_iso
    return BootEntry(mac=mac, node_uuid=node_uuid, mode=mode, boot_mode=boot_mode,
                     kernel=kernel if network else None,
                     ramdisk=ramdisk if network else None,
                     kernel_params=str(params), boot_iso=boot_iso)
