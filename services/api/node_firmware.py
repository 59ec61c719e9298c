"""/v1/nodes/{ident}/firmware: the node's cached firmware components (Ironic 1.86's shape),
read-only: they change through the ``firmware.update`` clean step, and the conductor caches
what the firmware interface reads (services/conductor/component_caches.py). 404 below 1.86.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from sqlalchemy import select

from services.api.deps import api_version, database, find_node, require_version
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import timestamp
from services.common.db import Database
from services.common.models import FIRMWARE_IDENTITY_FIELDS, FirmwareComponent

router = api_router(prefix="/v1/nodes/{ident}/firmware")

FIRMWARE_VERSION: Version = (1, 86)
IDENTITY_VERSION: Version = (1, 114)  # vendor, model, serial_number


@router.get("")
def list_firmware_components(ident: str, version: Version = Depends(api_version),
                             db: Database = Depends(database)) -> dict[str, Any]:
    require_version(version, FIRMWARE_VERSION)
    with db.session() as session:
        node = find_node(session, ident, version)
        rows = session.scalars(select(FirmwareComponent).where(
            FirmwareComponent.node_id == node.id).order_by(FirmwareComponent.component))
        identity = FIRMWARE_IDENTITY_FIELDS if version >= IDENTITY_VERSION else ()
        return {"firmware": [{
            "created_at": timestamp(row.created_at), "updated_at": timestamp(row.updated_at),
            "component": row.component, "initial_version": row.initial_version,
            "current_version": row.current_version,
            "last_version_flashed": row.last_version_flashed,
            **{name: getattr(row, name) for name in identity}} for row in rows]}
