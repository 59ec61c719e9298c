"""What a diskless node boots (the ``ramdisk`` deploy interface): its instance's kernel and
ramdisk, or an ISO, from the network, every time it starts; its disk is never written.

The node's ``instance_info`` names them as Ironic's ramdisk deploy reads them:

- ``kernel`` and ``ramdisk``: http(s) URLs, or names of files in the boot service's files
  directory (as ``deploy_kernel``); or ``boot_iso``: the URL (or file name) of an ISO that
  iPXE boots over HTTP (``sanboot``);
- or, as Ironic reads a Glance image's ``kernel_id``/``ramdisk_id`` properties when
  ``kernel``/``ramdisk`` are not set, ``image_source`` naming a catalogue image version (its
  UUID, or the boot service's URL of its disk: ``block_restore.named_version``) whose
  ``kernel`` and ``ramdisk`` fill in the missing ones (the catalogue has no ISO of a version:
  Glance's ``boot_iso_id`` has no counterpart);
- ``kernel_append_params``: the instance kernel's command line (else the node's
  ``driver_info/kernel_append_params``, else ENCLUME_KERNEL_APPEND_PARAMS), after
  ``enclume.node=<uuid>``, which tells a diskless OS which node it is (it has no config drive),
  then ``ramdisk_kernel_arguments`` (Ironic's extra arguments of a ramdisk deploy).

The desired boot the boot interfaces write for it is ``{"mode": "instance", ...}``
(``services/common/bootconfig/entry.py``); ``services/boot/ipxe.py`` renders it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import object_session

from services.common.bootconfig import params
from services.common.bootconfig.files import served_url
from services.common.classroom_models import ImageVersion
from services.common.config import Settings
from services.drivers.base import MissingParameters
from services.drivers.deploy import block_restore
from services.drivers.driver_info import InvalidParameter

if TYPE_CHECKING:
    from services.common.models import Node

KERNEL_FILES = ("kernel", "ramdisk")
BOOT_ISO = "boot_iso"
# Ironic's words (deploy_utils.parse_instance_info, check_for_missing_params).
MISSING = "Some parameters were missing in node's instance_info"


def instance_files(settings: Settings, node: Node) -> dict[str, str]:
    """``{"kernel", "ramdisk"}`` or ``{"boot_iso"}`` as URLs the node can fetch; raises
    MissingParameters or InvalidParameter with Ironic's words."""
    info = node.instance_info or {}
    if info.get("image_source") and info.get(BOOT_ISO):
        raise InvalidParameter("An 'image_source' and 'boot_iso' parameter may not be "
                               "specified at the same time")
    keys: tuple[str, ...] = (BOOT_ISO,) if info.get(BOOT_ISO) else KERNEL_FILES
    if keys == KERNEL_FILES and not all(info.get(key) for key in keys):
        info = {**_catalogue_files(settings, node), **{k: v for k, v in info.items() if v}}
    missing = [key for key in keys if not info.get(key)]
    if missing:
        raise MissingParameters(f"{MISSING}. Missing are: {missing}")
    files = {}
    for key in keys:
        value = info[key]
        if not isinstance(value, str):
            raise InvalidParameter(f"instance_info/{key} must be a string, not {value!r}.")
        try:
            files[key] = served_url(settings.effective_boot_url, value)
        except ValueError as exc:
            raise InvalidParameter(f"instance_info/{key} {value!r} is not usable: "
                                   f"{exc}.") from None
    return files


def _catalogue_files(settings: Settings, node: Node) -> dict[str, str]:
    """The kernel and ramdisk of the catalogue version ``image_source`` names (else none)."""
    version_id, named_by_source = block_restore.named_version(node, settings)
    session = object_session(node)
    if version_id is None or not named_by_source or session is None:
        return {}
    version = session.scalar(select(ImageVersion).where(ImageVersion.uuid == version_id))
    if version is None:
        raise InvalidParameter(f"instance_info/image_source names image version {version_id}, "
                               f"which the catalogue does not have.")
    return {key: value for key, value in (("kernel", version.kernel),
                                          ("ramdisk", version.ramdisk)) if value}


def instance_kernel_params(settings: Settings, node: Node) -> str:
    """The diskless instance's kernel command line."""
    info = node.instance_info or {}
    if info.get("kernel_append_params") is not None:
        source, append = "instance_info", info["kernel_append_params"]
    elif node.driver_info.get("kernel_append_params") is not None:
        source, append = "driver_info", node.driver_info["kernel_append_params"]
    else:
        source, append = "ENCLUME_KERNEL_APPEND_PARAMS", settings.deploy.kernel_append_params
    if not isinstance(append, str):
        raise InvalidParameter(f"{source} kernel_append_params must be a string, not "
                               f"{append!r}.")
    extra = info.get("ramdisk_kernel_arguments") or ""
    if not isinstance(extra, str):
        raise InvalidParameter(f"instance_info/ramdisk_kernel_arguments must be a string, not "
                               f"{extra!r}.")
    line = " ".join(p for p in (f"enclume.node={node.uuid}", append.strip(), extra.strip()) if p)
    try:
        return params.check_safe("the kernel parameters", line)
    except params.UnsafeScriptValue as exc:
        raise InvalidParameter(f"{exc} ({source} kernel_append_params or instance_info/"
                               f"ramdisk_kernel_arguments).") from None


def desired_boot(settings: Settings, node: Node) -> dict[str, Any]:
    """The ``mode: instance`` desired boot of a diskless node (without boot mode and loader)."""
    files = instance_files(settings, node)
    if BOOT_ISO in files:
        return {"mode": "instance", "boot_iso": files[BOOT_ISO]}
    return {"mode": "instance", **files,
            "kernel_params": instance_kernel_params(settings, node)}
