"""/v1/nodes/{ident}/traits: a node's traits (API 1.37), checked by ``validation.traits``."""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Response

from services.api.deps import api_version, conductor, database, find_node
from services.api.routing import api_router
from services.api.versions import Version
from services.common import validation
from services.common.db import Database
from services.common.exceptions import Invalid
from services.conductor.interface import ConductorAPI

router = api_router(prefix="/v1/nodes")


# -- traits --------------------------------------------------------------------------------


def _traits_version(version: Version) -> None:
    if version < (1, 37):
        raise Invalid("Traits need API version 1.37 or newer.", code=404)


@router.get("/{ident}/traits")
def get_traits(ident: str, version: Version = Depends(api_version),
               db: Database = Depends(database)) -> dict[str, Any]:
    _traits_version(version)
    with db.session() as session:
        return {"traits": find_node(session, ident, version).traits}


@router.put("/{ident}/traits", status_code=204)
def set_traits(ident: str, body: Any = Body(...), version: Version = Depends(api_version),
               db: Database = Depends(database),
               manager: ConductorAPI = Depends(conductor)) -> Response:
    _traits_version(version)
    if not isinstance(body, dict) or set(body) != {"traits"}:
        raise Invalid("Invalid request: expected {\"traits\": [...]}.")
    traits = validation.traits(body["traits"])
    with db.session() as session:
        node = find_node(session, ident, version)
    manager.update_traits(node.uuid, replace=traits)
    return Response(status_code=204)


@router.put("/{ident}/traits/{trait}", status_code=204)
def add_trait(ident: str, trait: str, version: Version = Depends(api_version),
              db: Database = Depends(database),
              manager: ConductorAPI = Depends(conductor)) -> Response:
    _traits_version(version)
    with db.session() as session:
        node = find_node(session, ident, version)
    manager.update_traits(node.uuid, add=validation.traits([trait]))
    return Response(status_code=204)


@router.delete("/{ident}/traits", status_code=204)
def remove_traits(ident: str, version: Version = Depends(api_version),
                  db: Database = Depends(database),
                  manager: ConductorAPI = Depends(conductor)) -> Response:
    _traits_version(version)
    with db.session() as session:
        node = find_node(session, ident, version)
    manager.update_traits(node.uuid, remove=[])
    return Response(status_code=204)


@router.delete("/{ident}/traits/{trait}", status_code=204)
def remove_trait(ident: str, trait: str, version: Version = Depends(api_version),
                 db: Database = Depends(database),
                 manager: ConductorAPI = Depends(conductor)) -> Response:
    _traits_version(version)
    with db.session() as session:
        node = find_node(session, ident, version)
    manager.update_traits(node.uuid, remove=[trait])
    return Response(status_code=204)
