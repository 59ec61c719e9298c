"""/v1/nodes/{ident}/children (API 1.83): the UUIDs of the nodes whose ``parent_node`` is
this node, with the link to the same list as ``/v1/nodes?parent_node=``. A project's caller
sees the children its project owns or leases (Ironic's check_list_policy)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select

from services.api.deps import api_version, database, find_node, require_version
from services.api.nodes import CHILDREN_VERSION
from services.api.policy_gate import project_filter
from services.api.policy_lookup import owned_or_leased
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
        statement = select(Node.uuid).where(Node.parent_node == parent.uuid)
        if project := project_filter(request):  # a project's caller: its own share
            statement = statement.where(Node.id.in_(owned_or_leased(project)))
        children = list(session.scalars(statement.order_by(Node.id)))
    # One link object, not a list: Ironic's make_link('children', ...).
    return {"children": children,
            "links": {"href": f"{base_url(request)}/v1/nodes?parent_node={parent.uuid}",
                      "rel": "children"}}
