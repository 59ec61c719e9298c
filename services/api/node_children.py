"""/v1/nodes/{ident}/children (API 1.83): the UUIDs of the nodes whose ``parent_node`` is
this node, with the link to the same list as ``/v1/nodes?parent_node=``."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select

from services.api.deps import api_version, database, find_node, require_version
from services.api.nodes import CHILDREN_VERSION
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import base_url
from services.common.db import Database
from services.common.models import Node

router = api_router(prefix="/v1/nodes/{ident}/children")


@router.get("")
def list_children(ident: str, request: Request, version: Version = Depends(api_version),
                  db: Database = Depends(database)) -> dict[str, Any]:
    require_version(version, CHILDREN_VERSION)
    with db.session() as session:
        parent = find_node(session, ident, version)
        children = list(session.scalars(select(Node.uuid).where(
            Node.parent_node == parent.uuid).order_by(Node.id)))
    # One link object, not a list: Ironic's make_link('children', ...).
    return {"children": children,
            "links": {"href": f"{base_url(request)}/v1/nodes?parent_node={parent.uuid}",
                      "rel": "children"}}
