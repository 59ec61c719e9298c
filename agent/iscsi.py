"""iscsi.start_iscsi_target / stop: the disk exported over iSCSI by the kernel's LIO target
(python3-rtslib-fb), with CHAP credentials that live only for one deploy.

Needs the kernel modules configfs, target_core_mod, target_core_iblock (block devices) or
target_core_file (file-backed disks, tests), iscsi_target_mod and crc32c_generic, and configfs
mounted on /sys/kernel/config; the agent loads and mounts what is missing, and makes the state
directories rtslib-fb insists on.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass
from typing import Any

from agent.disks import Disk
from agent.errors import BadParams, CommandError

LOG = logging.getLogger(__name__)
CONFIGFS = "/sys/kernel/config"
# rtslib-fb (Debian 2.1.75) points LIO's dbroot at its own directory and fails without it
STATE_DIRS = ("/etc/target", "/etc/rtslib-fb-target")
MODULES = ("configfs", "target_core_mod", "target_core_iblock", "target_core_file",
           "iscsi_target_mod", "crc32c_generic")
IQN = re.compile(r"^iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[^\s]+)?$")
STORAGE_NAME = "enclume"
# RFC 7143 CHAP secrets: LIO wants 12..16 characters for the initiator's one
MIN_SECRET, MAX_SECRET = 12, 255


@dataclass(frozen=True)
class TargetRequest:
    iqn: str
    username: str
    password: str
    port: int
    target_disk: str | None


def parse(params: dict[str, Any]) -> TargetRequest:
    iqn, user, password = params.get("iqn"), params.get("username"), params.get("password")
    if not isinstance(iqn, str) or not IQN.match(iqn):
        raise BadParams(f"iqn must look like iqn.YYYY-MM.domain:name, got {iqn!r}")
    if not isinstance(user, str) or not user:
        raise BadParams("username (CHAP) is required")
    if not isinstance(password, str) or not MIN_SECRET <= len(password) <= MAX_SECRET:
        raise BadParams(f"password (CHAP) must have {MIN_SECRET}-{MAX_SECRET} characters")
    port = params.get("portal_port", 3260)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise BadParams(f"portal_port must be a TCP port, got {port!r}")
    target = params.get("target_disk")
    if target is not None and not isinstance(target, str):
        raise BadParams("target_disk must be a device path")
    return TargetRequest(iqn, user, password, port, target)


def _prepare_kernel() -> None:
    for module in MODULES:
        subprocess.run(["modprobe", module], check=False, capture_output=True)
    if not os.path.isdir(os.path.join(CONFIGFS, "target")):
        subprocess.run(["mount", "-t", "configfs", "configfs", CONFIGFS], check=False,
                       capture_output=True)
    if not os.path.isdir(os.path.join(CONFIGFS, "target")):
        raise CommandError("the kernel has no LIO target (configfs target_core_mod missing): "
                           "cannot export the disk over iSCSI")
    for directory in STATE_DIRS:
        os.makedirs(directory, exist_ok=True)


def start(request: TargetRequest, disk: Disk, advertise_host: str) -> dict[str, Any]:
    _prepare_kernel()
    try:
        import rtslib_fb as rtslib
    except ImportError:
        raise CommandError("the ramdisk has no python3-rtslib-fb") from None
    try:
        stop(request.iqn)  # a retried command replaces its own earlier export
        if disk.is_block:
            storage = rtslib.BlockStorageObject(STORAGE_NAME, dev=disk.path)
        else:
            storage = rtslib.FileIOStorageObject(STORAGE_NAME, dev=disk.path, size=disk.size)
        target = rtslib.Target(rtslib.FabricModule("iscsi"), request.iqn)
        tpg = rtslib.TPG(target, 1)
        rtslib.NetworkPortal(tpg, "0.0.0.0", request.port)
        rtslib.LUN(tpg, 0, storage)
        tpg.set_attribute("authentication", "1")
        tpg.set_attribute("generate_node_acls", "1")
        tpg.set_attribute("demo_mode_write_protect", "0")
        tpg.chap_userid = request.username
        tpg.chap_password = request.password
        tpg.enable = True
    except rtslib.RTSLibError as exc:
        stop(request.iqn)
        raise CommandError(f"LIO refused the iSCSI export of {disk.path}: {exc}") from None
    LOG.info("exporting %s as %s on port %d", disk.path, request.iqn, request.port)
    return {"iscsi_target_iqn": request.iqn, "portal": f"{advertise_host}:{request.port}"}


def stop(iqn: str | None = None) -> dict[str, Any]:
    """Remove the export (all of the agent's when ``iqn`` is None); fine when there is none."""
    if not os.path.isdir(os.path.join(CONFIGFS, "target")):
        return {"stopped": []}
    for directory in STATE_DIRS:
        os.makedirs(directory, exist_ok=True)
    import rtslib_fb as rtslib
    root = rtslib.RTSRoot()
    stopped = []
    for target in list(root.targets):
        if iqn is None or target.wwn == iqn:
            stopped.append(target.wwn)
            target.delete()
    for storage in list(root.storage_objects):
        if storage.name == STORAGE_NAME:
            storage.delete()
    return {"stopped": stopped}
