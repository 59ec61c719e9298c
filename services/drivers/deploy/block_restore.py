"""Deploying a catalogue image version the image store holds: the agent's
``deploy.restore_blocks`` in place of the plain image download (docs/images.md).

instance_info names the version (the store's version id is the catalogue version's UUID):
- ``image_source``: the boot service's URL of the version's disk
  (``<boot URL>/image-versions/<uuid>/disk``) or the version's UUID, as Ironic takes a Glance
  image UUID there: the store must hold it;
- or ``image_version``: the version's UUID beside an ordinary ``image_source`` (what room jobs
  set): the block restore when the store holds it, else the plain download of ``image_source``.

``image_restore``: ``full`` (default) or ``delta``. Only whole-disk images without a config
drive of the user's are restored by blocks (the manifest describes the whole disk). A version
``image_source`` names that blocks cannot restore (a partition image, a user's config drive) is
written by ``standby.write_image`` reading the store's disk with an image token
(``write_params``).

The write the node's disk last had is kept in ``driver_internal_info["image_written"]`` (the
version, how it was written, bytes fetched against the image's size): forgotten when a deploy
starts or the disk is erased, set when a write of a known version succeeded. Room restores
read it to choose delta or full.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.common.bootconfig.image_cache import ImageSource
from services.common.config import Settings
from services.common.models import Node
from services.common.validation import is_uuid
from services.drivers.deploy import image
from services.drivers.deploy.image import PARTITION, WHOLE_DISK, target_disk
from services.drivers.driver_info import InvalidParameter
from services.images import tokens as image_tokens
from services.images.errors import StoreError, UnknownVersion
from services.images.store import ImageStore

if TYPE_CHECKING:
    from services.conductor.task import Task

RESTORE_BLOCKS = "deploy.restore_blocks"
RESTORE_MODES = ("full", "delta")
IMAGE_WRITTEN = "image_written"
VERSION_ROUTE = "/image-versions"
_VERSION_URL = re.compile(r"^(?P<base>.*)" + VERSION_ROUTE + r"/(?P<id>[^/?#]+)/disk$")


@dataclass(frozen=True)
class BlockSource:
    version_id: str
    manifest_sha256: str
    mode: str
    image_sha256: str = ""  # the version's disk (the checksum standby.write_image verifies)
    by_blocks: bool = True  # False: written whole by standby.write_image (write_params)
    base_version: str | None = None  # a student's state: the version it was saved on


def restore_mode(node: Node) -> str:
    wanted = (node.instance_info or {}).get("image_restore") or "full"
    if wanted not in RESTORE_MODES:
        raise InvalidParameter(f"instance_info/image_restore must be one of "
                               f"{', '.join(RESTORE_MODES)}, not {wanted!r}.")
    return str(wanted)


def named_version(node: Node, settings: Settings) -> tuple[str | None, bool]:
    """The catalogue version instance_info names, and whether ``image_source`` names it (then
    only the store can provide it)."""
    info = node.instance_info or {}
    source = info.get("image_source")
    if isinstance(source, str):
        if is_uuid(source):
            return source.lower(), True
        match = _VERSION_URL.match(source)
        if match and match.group("base").rstrip("/") == settings.effective_boot_url.rstrip("/"):
            return match.group("id"), True
    version = info.get("image_version")
    if version in (None, ""):
        return None, False
    if not isinstance(version, str) or not is_uuid(version):
        raise InvalidParameter(f"instance_info/image_version must be an image version's UUID, "
                               f"not {version!r}.")
    return version.lower(), False


def _unsuitable(node: Node) -> str | None:
    info = node.instance_info or {}
    implied = PARTITION if info.get("kernel") and info.get("ramdisk") else WHOLE_DISK
    if (info.get("image_type") or implied) != WHOLE_DISK:
        return "a partition image is written by standby.write_image, not restored by blocks"
    if info.get("configdrive"):
        return "a block restore writes the version's disk as it is: it cannot add a config drive"
    return None


def block_source(node: Node, settings: Settings, state_store_id: str | None = None
                 ) -> BlockSource | None:
    """How to restore ``node``'s disk by blocks; None for the plain image download.
    InvalidParameter when instance_info asks for something that cannot be done.
    ``state_store_id``: a student's state on top of the version (services/drivers/deploy/
    state_resume.py), restored from its manifest in the store."""
    mode = restore_mode(node)
    version_id, required = named_version(node, settings)
    if state_store_id is not None:
        return _state_source(node, settings, mode, version_id, state_store_id)
    if version_id is None:
        if (node.instance_info or {}).get("image_restore"):
            raise InvalidParameter("instance_info/image_restore needs a catalogue image version "
                                   "(instance_info/image_version or image_source).")
        return None
    problem = _unsuitable(node)
    if problem is not None and not required:
        return None
    store = store_of(settings)
    try:
        digest = store.manifest_sha256(version_id)
        image_sha256 = store.manifest(version_id).image_sha256
    except UnknownVersion:
        if required:
            raise InvalidParameter(f"Image version {version_id} is not in the image store "
                                   f"({settings.effective_image_store_dir}).") from None
        return None
    except StoreError as exc:
        raise InvalidParameter(str(exc)) from None
    if problem is not None:
        if (node.instance_info or {}).get("image_restore") == "delta":
            raise InvalidParameter(f"Image version {version_id} cannot be restored by delta: "
                                   f"{problem}.")
        return BlockSource(version_id, digest, "full", image_sha256, by_blocks=False)
    return BlockSource(version_id, digest, mode, image_sha256)


def _state_source(node: Node, settings: Settings, mode: str, version_id: str | None,
                  store_id: str) -> BlockSource:
    problem = _unsuitable(node)
    if version_id is None or problem is not None:
        raise InvalidParameter(f"A student's state is restored by blocks on top of a whole-disk "
                               f"image version: {problem or 'no image_version is named'}.")
    try:
        store = store_of(settings)
        return BlockSource(store_id, store.manifest_sha256(store_id), mode,
                           store.manifest(store_id).image_sha256, base_version=version_id)
    except StoreError as exc:
        raise InvalidParameter(f"The student's state is not in the image store: {exc}") \
            from None


def store_of(settings: Settings) -> ImageStore:
    return ImageStore(settings.effective_image_store_dir, settings.images.store_max_bytes)


def _version_url(settings: Settings, source: BlockSource) -> str:
    return f"{settings.effective_boot_url}{VERSION_ROUTE}/{source.version_id}"


def _token(settings: Settings, source: BlockSource) -> str:
    """The image token that lets the agent read this one version from the boot service."""
    return image_tokens.issue(image_tokens.load_secret(settings), source.version_id,
                              settings.images.token_ttl_s)


def restore_params(node: Node, settings: Settings, source: BlockSource) -> dict[str, Any]:
    """The parameters of the agent's ``deploy.restore_blocks``."""
    base = _version_url(settings, source)
    return {"manifest_url": f"{base}/manifest", "manifest_sha256": source.manifest_sha256,
            "disk_url": f"{base}/disk", "mode": source.mode, "target_disk": target_disk(node),
            "image_token": _token(settings, source)}


def write_params(node: Node, settings: Settings, source: BlockSource) -> dict[str, Any]:
    """The parameters of the agent's ``standby.write_image`` for a version blocks cannot
    restore: the store's raw disk of the version, its sha256, and the image token."""
    disk_url = f"{_version_url(settings, source)}/disk"
    params = image.write_image_params(node, settings,
                                      ImageSource(disk_url, "sha256", source.image_sha256))
    return {**params, "image_url": disk_url, "image_disk_format": "raw",
            "image_token": _token(settings, source)}


def record_restore(task: Task, source: BlockSource, result: dict[str, Any]) -> None:
    multicast = {"transfer": "multicast"} if result.get("transfer") == "multicast" else {}
    state = {} if source.base_version is None else {"student_state_store": source.version_id}
    record_written(task, source.base_version or source.version_id, {**multicast, **state,
        "method": "restore_blocks", "mode": result.get("mode", source.mode),
        "fell_back_to_full": bool(result.get("fell_back_to_full")),
        "differing_blocks": result.get("differing_blocks"),
        "fetched_bytes": result.get("fetched_bytes"), "image_size": result.get("image_size")})


def record_written(task: Task, version_id: str | None, details: dict[str, Any]) -> None:
    """What the disk holds now, after a successful write (nothing when no version is known)."""
    if version_id is not None:
        task.update_internal_info(**{IMAGE_WRITTEN: {"version": version_id, **details}})


def forget_written(task: Task) -> None:
    task.pop_internal_info(IMAGE_WRITTEN)
