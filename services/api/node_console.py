"""/v1/nodes/{ident}/states/console: a node's serial console, as Ironic serves it.

``GET`` answers ``console_enabled`` and ``console_info`` (``{"type", "url"}`` from the node's
conductor, null when the console is off); ``PUT {"enabled": true|false}`` asks the node's
conductor to open or close it (202: done by a worker; a failure is the node's last_error)."""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response

from services.api.deps import api_version, conductor, database, find_node
from services.api.routing import api_router
from services.api.versions import Version
from services.common import validation
from services.common.db import Database
from services.common.exceptions import Invalid
from services.conductor.interface import ConductorAPI

router = api_router(prefix="/v1/nodes")


@router.get("/{ident}/states/console")
def get_console(ident: str, version: Version = Depends(api_version),
                db: Database = Depends(database),
                manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    with db.session() as session:
        node = find_node(session, ident, version)
        uuid, enabled = node.uuid, node.console_enabled
    info = manager.get_console_information(uuid) if enabled else None
    return {"console_enabled": enabled, "console_info": info}


@router.put("/{ident}/states/console", status_code=202)
def set_console(ident: str, request: Request, body: Any = Body(...),
                version: Version = Depends(api_version), db: Database = Depends(database),
                manager: ConductorAPI = Depends(conductor)) -> Response:
    if not isinstance(body, dict) or "enabled" not in body:
        raise Invalid("Invalid request: a console change needs \"enabled\".")
    unknown = set(body) - {"enabled"}
    if unknown:
        raise Invalid(f"Unknown attribute(s) for a console change: "
                      f"{', '.join(sorted(unknown))}.")
    enabled = validation.boolean("enabled", body["enabled"])
    with db.session() as session:
        node = find_node(session, ident, version)
        uuid = node.uuid
    manager.set_console_mode(uuid, enabled)
    return Response(status_code=202, headers={
        "Location": f"{request.base_url}v1/nodes/{uuid}/states/console"})
