"""The image a node is deployed with, read from Ironic's ``instance_info`` keys.

- ``image_source``: an http(s) URL; ``image_os_hash_algo`` + ``image_os_hash_value`` or
  ``image_checksum`` (parsed by the image cache's ``source_of``, the one checksum parser);
- ``image_disk_format``: ``raw`` or ``qcow2``; left out, the format the agent finds in the
  image's header (an image that is not what it says is refused);
- ``image_type``: ``whole-disk`` (default) or ``partition`` (also implied by ``kernel`` and
  ``ramdisk`` in instance_info, as in Ironic); ``root_gb``/``root_mb``, ``swap_mb`` for
  partition images;
- ``configdrive``: a base64 gzipped ISO or a URL (a JSON config drive is refused: Enclume does
  not build config drives yet);
- ``image_download_source`` (also in driver_info, else ENCLUME_IMAGE_DOWNLOAD_SOURCE): ``local``
  — the agent downloads from the boot service's image cache (``<boot URL>/images/<node>``),
  ``http`` — the agent downloads ``image_source`` itself;
- the target disk: ``properties.root_device.name`` when given, else the agent's choice.

A catalogue image version the image store holds is restored by blocks instead
(``image_version``, ``image_restore``: see ``block_restore``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.bootconfig.image_cache import ImageSource, InvalidImageSource, source_of
from services.common.config import Settings
from services.common.models import Node
from services.drivers.base import MissingParameters
from services.drivers.boot_mode import boot_mode
from services.drivers.driver_info import InvalidParameter

DISK_FORMATS = ("raw", "qcow2")
WHOLE_DISK = "whole-disk"
PARTITION = "partition"
IMAGE_TYPES = (WHOLE_DISK, PARTITION)
DOWNLOAD_SOURCES = ("local", "http")
MIB_PER_GIB = 1024


@dataclass(frozen=True)
class DeployImage:
    source: ImageSource
    disk_format: str | None  # None: the agent goes by the image's header
    image_type: str
    root_mb: int
    swap_mb: int
    configdrive: str | None


def _number(info: dict[str, Any], key: str) -> int:
    value = info.get(key)
    if value in (None, ""):
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"instance_info/{key} must be a whole number, not "
                               f"{value!r}.") from None
    if number < 0:
        raise InvalidParameter(f"instance_info/{key} must not be negative.")
    return number


def _choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise InvalidParameter(f"{what} must be one of {', '.join(allowed)}, not {value!r}.")
    return str(value)


def deploy_image(node: Node, source: ImageSource | None = None) -> DeployImage:
    """The image of ``node``, checked; InvalidParameter/MissingParameters say what is wrong.
    ``source``: where the image is read from and its checksum, when not from ``image_source``
    (a version of the image store)."""
    info = node.instance_info or {}
    if not info.get("image_source"):
        raise MissingParameters(f"Node {node.uuid} has no instance_info/image_source: set it "
                                f"(and its checksum) before deploying.")
    if source is None:
        try:
            source = source_of(info)
        except InvalidImageSource as exc:
            raise InvalidParameter(str(exc)) from None
    declared = info.get("image_disk_format")
    disk_format = _choice(declared, DISK_FORMATS, "instance_info/image_disk_format") \
        if declared else None
    implied = PARTITION if info.get("kernel") and info.get("ramdisk") else WHOLE_DISK
    image_type = _choice(info.get("image_type") or implied, IMAGE_TYPES,
                         "instance_info/image_type")
    root_mb = _number(info, "root_mb") or _number(info, "root_gb") * MIB_PER_GIB
    if image_type == PARTITION and root_mb == 0:
        raise MissingParameters("A partition image needs instance_info/root_gb (or root_mb): "
                                "the size of the root partition.")
    configdrive = info.get("configdrive")
    if isinstance(configdrive, dict):
        raise InvalidParameter("A config drive given as JSON is not supported yet: give a "
                               "base64-encoded gzipped ISO 9660 image or its URL.")
    if configdrive is not None and not isinstance(configdrive, str):
        raise InvalidParameter("instance_info/configdrive must be a string (base64 gzipped ISO "
                               "or a URL).")
    return DeployImage(source, disk_format, image_type, root_mb, _number(info, "swap_mb"),
                       configdrive or None)


def download_source(node: Node, settings: Settings) -> str:
    wanted = ((node.instance_info or {}).get("image_download_source")
              or (node.driver_info or {}).get("image_download_source")
              or settings.deploy.image_download_source)
    return _choice(wanted, DOWNLOAD_SOURCES, "image_download_source")


def download_url(node: Node, settings: Settings, image: DeployImage) -> str:
    """Where the agent downloads the image: the boot service's cache, or the source itself."""
    if download_source(node, settings) == "local":
        return f"{settings.effective_boot_url}/images/{node.uuid}"
    return image.source.url


def target_disk(node: Node) -> str | None:
    hints = (node.properties or {}).get("root_device")
    name = hints.get("name") if isinstance(hints, dict) else None
    return name if isinstance(name, str) and name else None


def write_image_params(node: Node, settings: Settings,
                       source: ImageSource | None = None) -> dict[str, Any]:
    """The parameters of the agent's ``standby.write_image`` (they may hold a URL with
    credentials: never log them)."""
    image = deploy_image(node, source)
    return {
        "image_url": download_url(node, settings, image),
        "image_os_hash_algo": image.source.algorithm,
        "image_os_hash_value": image.source.digest,
        "image_disk_format": image.disk_format,
        "image_type": image.image_type,
        "root_mb": image.root_mb,
        "swap_mb": image.swap_mb,
        "configdrive": image.configdrive,
        "target_disk": target_disk(node),
        "boot_mode": boot_mode(node, settings),
    }
