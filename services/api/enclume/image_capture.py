"""POST /enclume/v1/images/<image>/capture: a reference PC's disk becomes a new version of the
image (docs/images.md "Capture"). Admins and operators only.

Body ``{"node": <uuid or name>, "version": <name, default the UTC time>, "target_disk": <path,
optional>, "image_type": "whole-disk" (default) or "partition", and for a partition:
"kernel", "ramdisk" (as a partition version's in the catalogue), "root_partition" (its number,
optional: default the largest Linux partition)}``; the node must be ``manageable`` and run the
agent (deploy interface ``direct`` or ``iscsi``). Answered 202 at once: the conductor boots the
node into the deploy ramdisk as a cleaning (``clean wait`` while the agent sends its disk), then
puts it back to ``manageable``; the version is in the catalogue when it is. A failure leaves the
node in ``clean failed`` with the reason in ``last_error`` and no version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import select

from services.api.deps import conductor, database, find_node
from services.api.enclume.common import PREFIX, identity
from services.api.responses import rendered
from services.api.routing import api_router
from services.api.versions import MAX_VERSION
from services.classroom import images
from services.classroom.access import require_staff
from services.classroom.fields import IMAGE_TYPES, choice, known_keys
from services.classroom.image_capture import OPTION, capture_step
from services.common import validation
from services.common.classroom_models import ImageVersion
from services.common.db import Database
from services.common.exceptions import Conflict, Invalid
from services.common.identity import Identity
from services.conductor.interface import ConductorAPI

router = api_router(include_in_schema=False)
FIELDS = frozenset({"node", "version", "target_disk", "image_type", "kernel", "ramdisk",
                    "root_partition"})


def _partition(values: dict[str, Any]) -> dict[str, Any] | None:
    """The step args of a partition capture, None for a whole disk; Invalid if wrong."""
    image_type = choice("image_type", values.get("image_type", "whole-disk"), IMAGE_TYPES)
    files = images.boot_files(image_type, values)
    root = values.get("root_partition")
    if image_type != "partition":
        if root is not None:
            raise Invalid("root_partition belongs to partition captures only.")
        return None
    if root is not None and (isinstance(root, bool) or not isinstance(root, int)
                             or not 1 <= root <= 128):
        raise Invalid("root_partition must be a partition number from 1 to 128.")
    return {**files, **({} if root is None else {"root_partition": root})}


def _version_name(value: Any) -> str:
    if value is None:
        return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return validation.name(value, "image version")


@router.post(f"{PREFIX}/images/{{ident}}/capture", status_code=202)
def capture(ident: str, request: Request, body: Any = Body(...),
            caller: Identity = Depends(identity), db: Database = Depends(database),
            manager: ConductorAPI = Depends(conductor)) -> Response:
    require_staff(caller, "capture images")
    values = known_keys("capture", body, FIELDS)
    node_ident = validation.node_ident("node", values.get("node"))
    version = _version_name(values.get("version"))
    target_disk = values.get("target_disk")
    if target_disk is not None and not (isinstance(target_disk, str)
                                        and target_disk.startswith("/dev/")):
        raise Invalid("target_disk must be a device path such as /dev/sda.")
    partition = _partition(values)
    settings = request.app.state.settings
    with db.session() as session:
        image = images.find_image(session, ident)
        if session.scalar(select(ImageVersion.id).where(
                ImageVersion.image_id == image.id, ImageVersion.version == version)):
            raise Conflict(f"Image {image.name} already has a version {version}.")
        node = find_node(session, node_ident, MAX_VERSION)
        step = capture_step(image, version, settings.effective_boot_url, node.uuid,
                            target_disk, partition)
        document = {"image": image.name, "version": version, "node": node.uuid,
                    "node_name": node.name, "session": step["args"]["session"]}
    manager.do_provisioning_action(node.uuid, "clean", {OPTION: step})
    return rendered(document, 202)
