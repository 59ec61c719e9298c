"""/v1/nodes/{ident}/vifs: the VIFs attached to a node's ports (API 1.28), as Ironic serves them.

The conductor that owns the node attaches, detaches and lists them under the node's lock; its
network interface keeps them (services/drivers/network/vifs.py). Before 1.28 these paths do not
exist (404), as in Ironic.
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Response

from services.api.deps import api_version, conductor, database, find_node_uuid
from services.api.routing import api_router
from services.api.versions import Version
from services.common import validation
from services.common.db import Database
from services.common.exceptions import Invalid
from services.conductor.interface import ConductorAPI

router = api_router(prefix="/v1/nodes")

VIFS_VERSION: Version = (1, 28)
PORT_HINTS_VERSION: Version = (1, 67)  # port_uuid / portgroup_uuid in the body


@router.get("/{ident}/vifs")
def list_vifs(ident: str, version: Version = Depends(api_version),
              db: Database = Depends(database),
              manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    return {"vifs": manager.vif_list(find_node_uuid(db, ident, version, VIFS_VERSION))}


@router.post("/{ident}/vifs", status_code=204)
def attach_vif(ident: str, body: Any = Body(...), version: Version = Depends(api_version),
               db: Database = Depends(database),
               manager: ConductorAPI = Depends(conductor)) -> Response:
    node_uuid = find_node_uuid(db, ident, version, VIFS_VERSION)
    if not isinstance(body, dict) or "id" not in body:
        raise Invalid("Invalid input for field/attribute vif: 'id' is a required property.")
    if not isinstance(body["id"], str) or not body["id"]:
        raise Invalid("Invalid input for field/attribute vif: 'id' must be a non-empty "
                      "string.")
    vif = {**body, "id": validation.text("vif", body["id"])}
    for hint in ("port_uuid", "portgroup_uuid"):
        if vif.get(hint) is not None:
            vif[hint] = validation.uuid_value(hint, vif[hint])
    named = vif.get("physical_networks", vif.get("physical_network"))
    for physnet in named if isinstance(named, list) else [named] if named is not None else []:
        validation.text("physical_network", physnet)  # the ports' own limit (64)
    if version >= PORT_HINTS_VERSION and "port_uuid" in vif and "portgroup_uuid" in vif:
        raise Invalid("Cannot specify both port_uuid and portgroup_uuid")
    manager.vif_attach(node_uuid, vif)
    return Response(status_code=204)


@router.delete("/{ident}/vifs/{vif_id}", status_code=204)
def detach_vif(ident: str, vif_id: str, version: Version = Depends(api_version),
               db: Database = Depends(database),
               manager: ConductorAPI = Depends(conductor)) -> Response:
    node_uuid = find_node_uuid(db, ident, version, VIFS_VERSION)
    manager.vif_detach(node_uuid, validation.text("vif", vif_id))
    return Response(status_code=204)
