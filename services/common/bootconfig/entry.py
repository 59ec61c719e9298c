"""A node's desired boot: the schema the conductor's boot interfaces write and the boot service
reads.

The boot interfaces keep it in ``driver_internal_info["boot"]`` (``{"mode": "ramdisk", "kernel",
"ramdisk", "kernel_params", "boot_mode", "boot_loader"}`` or ``{"mode": "local", "boot_mode",
"boot_loader"}``); a node without it gets no boot answers. Every PXE-enabled port of a node with
a desired boot is a ``BootEntry``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger(__name__)

BOOT_KEY = "boot"
MODES = ("ramdisk", "local")
BOOT_MODES = ("bios", "uefi")


@dataclass(frozen=True, slots=True)
class BootEntry:
    """One MAC address that must get boot answers, and what its node should boot."""

    mac: str
    node_uuid: str
    mode: str  # "ramdisk" | "local"
    boot_mode: str | None = None  # "bios" | "uefi"
    kernel: str | None = None
    ramdisk: str | None = None
    kernel_params: str = ""


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
    if mode == "ramdisk" and not (isinstance(kernel, str) and isinstance(ramdisk, str)
                                  and kernel and ramdisk):
        LOG.warning("node %s: ramdisk boot without kernel and ramdisk URLs, no boot answers",
                    node_uuid)
        return None
    params = boot.get("kernel_params") or ""
    return BootEntry(mac=mac, node_uuid=node_uuid, mode=mode, boot_mode=boot_mode,
                     kernel=kernel if mode == "ramdisk" else None,
                     ramdisk=ramdisk if mode == "ramdisk" else None,
                     kernel_params=str(params))
