"""POST /enclume/v1/images/<image>/capture: a reference PC's disk becomes a new version of the
image (docs/images.md "Capture"). Admins and operators only.

Body ``{"node": <uuid or name>, "version": <name, default the UTC time>, "target_disk": <path,
optional>}``; the node must be ``manageable`` and run the agent (deploy interface ``direct`` or
``iscsi``). Answered 202 at once: the conductor boots the node into the deploy ramdisk as a
cleaning (``clean wait`` while the agent sends its disk), then puts it back to ``manageable``;
the version is in the catalogue when it is. A failure leaves the node in ``clean failed`` with
the reason in ``last_error`` and no version.
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
from services.classroom.fields import known_keys
from services.classroom.image_capture import OPTION, capture_step
from services.common import validation
from services.common.classroom_models import ImageVersion
from services.common.db import Database
from services.common.exceptions import Conflict, Invalid
from services.common.identity import Identity
from services.conductor.interface import ConductorAPI

router = api_router(include_in_schema=False)
FIELDS = frozenset({"node", "version", "target_disk"})


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
    settings = request.app.state.settings
    with db.session() as session:
        image = images.find_image(session, ident)
        if session.scalar(select(ImageVersion.id).where(
                ImageVersion.image_id == image.id, ImageVersion.version == version)):
            raise Conflict(f"Image {image.name} already has a version {version}.")
        node = find_node(session, node_ident, MAX_VERSION)
        step = capture_step(image, version, settings.effective_boot_url, node.uuid,
                            target_disk)
        document = {"image": image.name, "version": version, "node": node.uuid,
                    "node_name": node.name, "session": step["args"]["session"]}
    manager.do_provisioning_action(node.uuid, "clean", {OPTION: step})
    return rendered(document, 202)
