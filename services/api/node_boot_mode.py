"""``PUT /v1/nodes/{ident}/states/boot_mode`` and ``.../states/secure_boot`` (API 1.76):
change the firmware's boot mode or UEFI secure boot through the management interface, as
Ironic does: 404 below 1.76, 400 for a bad target, 409 while the node is transitioning, then
202 and a conductor's worker (services/conductor/flows/boot_mode.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response

from services.api.deps import api_version, conductor, database, find_node
from services.api.routing import api_router
from services.api.versions import Version, format_version
from services.common import states, validation
from services.common.db import Database
from services.common.exceptions import Conflict, Invalid, NotFound
from services.common.models import Node
from services.conductor.interface import ConductorAPI

router = api_router(prefix="/v1/nodes/{ident}/states")

VERSION: Version = (1, 76)
BOOT_MODES = ("bios", "uefi")
TRANSITIONING = states.BUSY_STATES | states.WAIT_STATES  # Ironic's UNSTABLE_STATES


def _target(body: Any) -> Any:
    if not isinstance(body, dict) or "target" not in body:
        raise Invalid("Invalid request: a \"target\" is needed.")
    unknown = set(body) - {"target"}
    if unknown:
        raise Invalid(f"Unknown attribute(s): {', '.join(sorted(unknown))}.")
    return body["target"]


def _node(db: Database, ident: str, version: Version) -> Node:
    if version < VERSION:
        raise NotFound("This endpoint is supported starting with the API version "
                       f"{format_version(VERSION)}")
    with db.session() as session:
        return find_node(session, ident, version)


def _check_stable(node: Node) -> None:
    if node.provision_state in TRANSITIONING:
        raise Conflict(f"Node is in {node.provision_state} state. Since node is "
                       "transitioning, the boot mode will not be set as this may interfere "
                       "with ongoing changes and result in erroneous modification. Try again "
                       "later.")


def _accepted(request: Request, node: Node) -> Response:
    return Response(status_code=202,
                    headers={"Location": f"{request.base_url}v1/nodes/{node.uuid}/states"})


@router.put("/boot_mode", status_code=202)
def set_boot_mode(ident: str, request: Request, body: Any = Body(...),
                  version: Version = Depends(api_version), db: Database = Depends(database),
                  manager: ConductorAPI = Depends(conductor)) -> Response:
    target = _target(body)
    node = _node(db, ident, version)
    if target not in BOOT_MODES:
        raise Invalid(f"Invalid boot mode {target} requested for node. Allowed boot modes "
                      f"are: {', '.join(BOOT_MODES)}")
    _check_stable(node)
    manager.change_node_boot_mode(node.uuid, target)
    return _accepted(request, node)


@router.put("/secure_boot", status_code=202)
def set_secure_boot(ident: str, request: Request, body: Any = Body(...),
                    version: Version = Depends(api_version), db: Database = Depends(database),
                    manager: ConductorAPI = Depends(conductor)) -> Response:
    raw = _target(body)
    node = _node(db, ident, version)
    try:
        target = validation.boolean("target", raw)  # "True", "off"...: as Ironic's args
    except Invalid:
        target = None
    if target is None:
        raise Invalid(f"Invalid secure_boot {raw} requested for node. Allowed secure_boot "
                      "states are: True, False) ")
    _check_stable(node)
    manager.change_node_secure_boot(node.uuid, target)
    return _accepted(request, node)
