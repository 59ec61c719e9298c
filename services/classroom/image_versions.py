"""Image versions with the image store behind them: states, deletion rules, store summaries.

A version's ``state``: ``external`` (a catalogue entry only, deployed from its ``source``),
``ingesting`` (being fetched from its source URL into the store), ``available`` (in the store
under its UUID, with a block manifest), ``failed`` (``reason`` says why; nothing was kept).
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.classroom_models import ClassSession, Image, ImageVersion, Room
from services.common.exceptions import Conflict, NotFound
from services.common.models import utcnow
from services.images.errors import StoreError, UnknownVersion
from services.images.store import ImageStore

STATES = ("external", "ingesting", "available", "failed")


def set_state(version: ImageVersion, state: str, reason: str | None = None) -> None:
    assert state in STATES
    version.state, version.reason, version.state_changed_at = state, reason, utcnow()


def instance_info(version: ImageVersion) -> dict[str, Any]:
    """What a node needs to deploy ``version`` (Ironic's instance_info keys, and the version
    for a block restore)."""
    info: dict[str, Any] = {
        "image_source": version.source, "image_version": version.uuid,
        "image_os_hash_algo": "sha256",
        "image_os_hash_value": version.checksum, "image_disk_format": version.disk_format,
        "image_type": version.image_type, "deploy_boot_mode": version.boot_mode}
    if version.kernel:
        info.update(kernel=version.kernel, ramdisk=version.ramdisk)
    return info


def find_image_version(image: Image, version: str) -> ImageVersion:
    found = [v for v in image.versions if v.version == version]
    if not found:
        raise NotFound(f"Image {image.name} has no version {version}.")
    return found[0]


def refuse_if_used(session: Session, version: ImageVersion) -> None:
    """Conflict (409) naming who uses the version: a room whose restores use it by default
    (the newest version of the room's default image), or sessions (a session keeps its
    version until it is deleted, past ones included: its occurrences and jobs name it)."""
    image = version.image
    sessions = session.scalars(select(ClassSession).where(
        ClassSession.image_version_id == version.id).order_by(ClassSession.id)).all()
    if sessions:
        named = ", ".join(s.name or s.uuid for s in sessions[:5])
        more = f" and {len(sessions) - 5} more" if len(sessions) > 5 else ""
        raise Conflict(f"Version {version.version} of image {image.name} is used by sessions "
                       f"({named}{more}); delete them first.")
    if image.versions and image.versions[-1].id == version.id:
        rooms = session.scalars(select(Room.name).where(Room.default_image_id == image.id)
                                .order_by(Room.name)).all()
        if rooms:
            raise Conflict(f"Version {version.version} of image {image.name} is what room(s) "
                           f"{', '.join(rooms)} restore by default (the newest version of their "
                           f"default image): add a newer version or change their default image "
                           f"first.")


def forget_in_store(store: ImageStore, version_uuid: str) -> None:
    """Remove a deleted version from the store (its blocks go at the next gc)."""
    with contextlib.suppress(UnknownVersion):
        store.delete_version(version_uuid)


def store_summary(store: ImageStore, version: ImageVersion) -> dict[str, Any] | None:
    """What the store holds of an available version: size, blocks, zero blocks, the bytes of
    its distinct blocks, the manifest's sha256 (None when the store has no such version)."""
    if version.state != "available":
        return None
    try:
        manifest = store.manifest(version.uuid)
        manifest_sha256 = store.manifest_sha256(version.uuid)
    except StoreError:
        return None
    distinct: dict[str, int] = {}
    for index, digest in enumerate(manifest.blocks):
        if digest is not None:
            distinct[digest] = manifest.block_length(index)
    return {"size": manifest.size, "block_size": manifest.block_size,
            "blocks": len(manifest.blocks),
            "zero_blocks": sum(1 for digest in manifest.blocks if digest is None),
            "data_bytes": manifest.data_bytes, "stored_bytes": sum(distinct.values()),
            "image_sha256": manifest.image_sha256, "manifest_sha256": manifest_sha256}
