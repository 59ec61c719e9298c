"""/v1/nodes: the node collection, single nodes and their inventory. A node's states and
actions are in ``node_states``, its traits in ``node_traits``."""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import collection, node_rules
from services.api.deps import api_version, conductor, database, enabled_drivers, find_node
from services.api.patch import apply_patch, validate_patch
from services.api.policy_gate import forced_owner, project_filter
from services.api.responses import rendered
from services.api.routing import api_router
from services.api.shards import VERSION as SHARD_VERSION
from services.api.versions import Version, format_version
from services.api.views import (
    NODE_FIELD_VERSIONS,
    NODE_LIST_FIELDS,
    node_document,
    visible_fields,
)
from services.common import validation
from services.common.db import Database
from services.common.enrollment import new_node
from services.common.exceptions import Invalid, NotAcceptable, NotFound, conflict_from_integrity
from services.common.membership import Membership
from services.common.models import Allocation, Chassis, Node, NodeInventory
from services.common.optimistic import retrying_stale
from services.conductor.interface import ConductorAPI

router = api_router(prefix="/v1/nodes")

SORTABLE = {"uuid", "name", "driver", "provision_state", "power_state", "maintenance",
            "resource_class", "conductor_group", "owner", "lessee", "created_at", "updated_at",
            "provision_updated_at", "instance_uuid", "id"}
FILTERS = ("chassis_uuid", "provision_state", "maintenance", "associated", "driver",
           "resource_class", "conductor_group", "owner", "lessee", "fault", "instance_uuid",
           "retired", "description_contains")
NEWER_FILTERS = ("shard", "sharded", "include_children", "parent_node",  # 1.82, 1.83
                 "instance_name")  # 1.104
INSTANCE_NAME_VERSION: Version = (1, 104)
CHILDREN_VERSION: Version = (1, 83)
INVENTORY_VERSION: Version = (1, 81)
PARENT_ERROR = "Unable to apply the requested parent_node '{ident}'. Requested value was invalid."


# -- rendering -----------------------------------------------------------------------------


class NodeRenderer:
    """Renders nodes for one request: looks up allocations and conductors once per page."""

    def __init__(self, request: Request, session: Session, version: Version,
                 fields: list[str]) -> None:
        self.request = request
        self.session = session
        self.version = version
        self.fields = fields
        self._membership: Membership | None = (
            request.app.state.membership if "conductor" in fields else None)

    def render(self, nodes: list[Node]) -> list[dict[str, Any]]:
        allocations: dict[int, str] = {}
        wanted_ids = [n.allocation_id for n in nodes if n.allocation_id is not None]
        if "allocation_uuid" in self.fields and wanted_ids:
            rows = self.session.execute(
                select(Allocation.id, Allocation.uuid).where(Allocation.id.in_(wanted_ids))
            )
            allocations = {row.id: row.uuid for row in rows}
        chassis: dict[int, str] = {}
        chassis_ids = [n.chassis_id for n in nodes if n.chassis_id is not None]
        if "chassis_uuid" in self.fields and chassis_ids:
            rows = self.session.execute(
                select(Chassis.id, Chassis.uuid).where(Chassis.id.in_(chassis_ids)))
            chassis = {row.id: row.uuid for row in rows}
        documents = []
        for node in nodes:
            document = node_document(
                self.request, node, self.fields,
                allocation_uuid=allocations.get(node.allocation_id or -1),
                conductor=self._owner(node),
                chassis_uuid=chassis.get(node.chassis_id or -1),
            )
            if self.version < (1, 2) and document.get("provision_state") == "available":
                document["provision_state"] = None
            documents.append(document)
        return documents

    def _owner(self, node: Node) -> str | None:
        if self._membership is None:
            return None
        owner = self._membership.owner(node.conductor_group, node.uuid)
        return owner.hostname if owner else None

    def one(self, node: Node) -> dict[str, Any]:
        return self.render([node])[0]


def full_fields(version: Version) -> list[str]:
    return visible_fields(NODE_FIELD_VERSIONS, version)


def show_fields(request: Request, version: Version) -> list[str]:
    return collection.single_fields(request, version, NODE_FIELD_VERSIONS)


# -- collection ----------------------------------------------------------------------------


def _filtered(request: Request, version: Version) -> Select[tuple[Node]]:
    params = request.query_params
    statement = select(Node)
    for name in FILTERS:
        raw = params.get(name)
        if raw is None:
            continue
        if name in ("maintenance", "retired"):
            statement = statement.where(getattr(Node, name).is_(collection.parse_bool(name, raw)))
        elif name == "associated":
            associated = collection.parse_bool(name, raw)
            column = Node.instance_uuid
            statement = statement.where(column.is_not(None) if associated else column.is_(None))
        elif name == "chassis_uuid":
            statement = statement.join(Chassis, Node.chassis_id == Chassis.id).where(
                Chassis.uuid == validation.uuid_value(name, raw).lower())
        elif name == "description_contains":
            statement = statement.where(Node.description.contains(raw))
        else:
            statement = statement.where(getattr(Node, name) == raw)
    if project := project_filter(request):  # a project's caller sees what it owns or leases
        statement = statement.where(or_(Node.owner == project, Node.lessee == project))
    return _newer_filters(statement, request, version)


def _newer_filters(statement: Select[tuple[Node]], request: Request, version: Version
                   ) -> Select[tuple[Node]]:
    """Shards (1.82) and children (1.83): children are listed only when asked for."""
    params = request.query_params
    shard, sharded = params.get("shard"), params.get("sharded")
    collection.require_filter_version(version, SHARD_VERSION, shard, sharded)
    include_children, parent = params.get("include_children"), params.get("parent_node")
    collection.require_filter_version(version, CHILDREN_VERSION, include_children, parent)
    if shard is not None:
        statement = statement.where(Node.shard.in_([s for s in shard.split(",") if s]))
    if sharded is not None:
        statement = statement.where(Node.shard.is_not(None) if collection.parse_bool(
            "sharded", sharded) else Node.shard.is_(None))
    if (instance_name := params.get("instance_name")) is not None:
        if version < INSTANCE_NAME_VERSION:  # Ironic's own text for this filter
            raise NotAcceptable("instance_name is not acceptable in this API version")
        statement = statement.where(Node.instance_name == instance_name)
    if not collection.parse_bool("include_children", include_children):
        statement = statement.where(Node.parent_node == parent if parent is not None
                                    else Node.parent_node.is_(None))
    return statement


def parent_uuid(session: Session, ident: str, owner: str | None) -> str:
    """The UUID of the parent a node names (1.83); Ironic's one text whether the parent does
    not exist or belongs to another owner."""
    where = Node.uuid == ident.lower() if validation.is_uuid(ident) else Node.name == ident
    parent = session.scalar(select(Node).where(where))
    if parent is None or parent.owner != owner:
        raise Invalid(PARENT_ERROR.format(ident=ident))
    return parent.uuid


def chassis_id(session: Session, chassis_uuid: str | None) -> int | None:
    """The id of the chassis a node names (Ironic's 400 when there is none such)."""
    if chassis_uuid is None:
        return None
    found = session.scalar(select(Chassis.id).where(Chassis.uuid == chassis_uuid))
    if found is None:
        raise Invalid(f"Chassis {chassis_uuid} could not be found.")
    return int(found)


def list_nodes_of(request: Request, version: Version, db: Database, detail_path: bool,
                  path: str, *where: Any) -> Response:
    """A page of the nodes (``where``: those of a chassis), with the list's parameters."""
    return _list(request, version, db, detail_path, path, *where)


def _list(request: Request, version: Version, db: Database, detail_path: bool,
          path: str, *where: Any) -> Response:
    """Rendered here: the largest documents the API writes (a detailed page of nodes) skip
    FastAPI's copy of a returned document, a page's worth of memory at its peak."""
    visible = full_fields(version)
    query = collection.parse_list_query(
        request, version=version, visible=visible, summary=NODE_LIST_FIELDS,
        sortable=SORTABLE & set(visible) | {"id"}, detail_path=detail_path,
    )
    with db.session() as session:
        marker = collection.marker_row(session, Node.uuid, query.marker)
        nodes = collection.page(session, _filtered(request, version).where(*where), query,
                                Node.id,
                                getattr(Node, query.sort_key), marker)
        documents = NodeRenderer(request, session, version, query.fields).render(nodes)
    return rendered({"nodes": documents,
                     **collection.next_link(request, path, nodes, query, lambda n: n.uuid)})


@router.get("")
def list_nodes(request: Request, version: Version = Depends(api_version),
               db: Database = Depends(database)) -> Response:
    return _list(request, version, db, detail_path=False, path="nodes")


@router.get("/detail")
def list_nodes_detail(request: Request, version: Version = Depends(api_version),
                      db: Database = Depends(database)) -> Response:
    return _list(request, version, db, detail_path=True, path="nodes/detail")


# -- single nodes --------------------------------------------------------------------------


@router.post("", status_code=201)
def create_node(request: Request, body: Any = Body(...),
                version: Version = Depends(api_version), db: Database = Depends(database)
                ) -> Response:
    if not isinstance(body, dict):
        raise Invalid("Invalid node: expected a JSON object.")
    unknown = [k for k in body if k not in node_rules.CREATABLE
               or (k != "uuid" and not node_rules.field_known(k, version))]
    if unknown:
        raise Invalid(f"Unknown attribute(s) for node: {', '.join(sorted(unknown))}.")
    if "driver" not in body:
        raise Invalid("Mandatory field missing: driver.")
    if owner := forced_owner(request):  # a project's admin creates its project's nodes
        body = {**body, "owner": owner}
    values = node_rules.values_for_create(
        body, request.app.state.settings.api.default_resource_class, enabled_drivers(request))
    try:
        with db.session() as session:
            values["chassis_id"] = chassis_id(session, values.pop("chassis_uuid", None))
            if values.get("parent_node"):
                values["parent_node"] = parent_uuid(session, values["parent_node"],
                                                    values.get("owner"))
            node = new_node(values, enroll=version >= (1, 11))
            session.add(node)
            session.flush()
            document = NodeRenderer(request, session, version, full_fields(version)).one(node)
            return rendered(document, 201, {"Location": f"{request.base_url}v1/nodes/{node.uuid}"})
    except IntegrityError as exc:
        raise conflict_from_integrity(exc, values) from None


@router.get("/{ident}")
def show_node(ident: str, request: Request, version: Version = Depends(api_version),
              db: Database = Depends(database)) -> dict[str, Any]:
    fields = show_fields(request, version)
    with db.session() as session:
        node = find_node(session, ident, version)
        return NodeRenderer(request, session, version, fields).one(node)


@router.patch("/{ident}")
def update_node(ident: str, request: Request, patch: Any = Body(...),
                version: Version = Depends(api_version), db: Database = Depends(database),
                manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    validate_patch(patch)
    for operation in patch:
        field = operation["path"].lstrip("/").split("/")[0]
        if field not in node_rules.WRITABLE:
            if node_rules.field_known(field, version):
                raise Invalid(f"'/{field}' is an internal attribute and can not be updated")
            raise Invalid(f"Unknown attribute for node: {field}")
        if not node_rules.field_known(field, version):
            raise NotAcceptable("Request not acceptable.")  # Ironic's disallowed_fields

    def attempt() -> str:  # again on the fresh node while another writer won (409 at last)
        with db.session() as session:
            node = find_node(session, ident, version)
            current = {field: getattr(node, field)
                       for field in node_rules.WRITABLE - {"chassis_uuid"}}
            chassis = session.get(Chassis, node.chassis_id) if node.chassis_id else None
            shown = {**current, "chassis_uuid": chassis.uuid if chassis else None}
        patched = {field: None for field in node_rules.WRITABLE} | apply_patch(shown, patch)
        if patched["driver"] != current["driver"]:
            # Interfaces the patch left alone start again from the new type's defaults.
            for field in node_rules.INTERFACE_FIELDS:
                if patched[field] == current[field]:
                    patched[field] = None
        values = node_rules.check_values(
            patched, enabled_drivers(request),
            node_rules.PATCH_NAME_ERROR.replace("{ident}", validation.as_sent(ident)))
        with db.session() as session:
            values["chassis_id"] = chassis_id(session, values.pop("chassis_uuid", None))
            if values.get("parent_node") and values["parent_node"] != current["parent_node"]:
                values["parent_node"] = parent_uuid(session, values["parent_node"],
                                                    current["owner"])
        current["chassis_id"] = node.chassis_id
        _name_from_display_name(values, current)
        changed = {field: value for field, value in values.items() if value != current[field]}
        if changed:
            manager.update_node(node.uuid, changed, expected=current)
        return node.uuid

    uuid = retrying_stale(attempt)
    with db.session() as session:
        node = find_node(session, uuid, version)
        return NodeRenderer(request, session, version, full_fields(version)).one(node)


def _name_from_display_name(values: dict[str, Any], current: dict[str, Any]) -> None:
    """As Ironic (1.104): new instance_info with a ``display_name`` names the instance when
    no instance_name is set."""
    display_name = (values.get("instance_info") or {}).get("display_name")
    if (values.get("instance_info") != current["instance_info"]
            and not values.get("instance_name") and isinstance(display_name, str)
            and 0 < len(display_name) <= validation.FIELD_LIMITS["instance_name"]):
        values["instance_name"] = display_name


@router.delete("/{ident}", status_code=204)
def delete_node(ident: str, version: Version = Depends(api_version),
                db: Database = Depends(database),
                manager: ConductorAPI = Depends(conductor)) -> Response:
    with db.session() as session:
        node = find_node(session, ident, version)
    manager.destroy_node(node.uuid)
    return Response(status_code=204)


# -- inventory -----------------------------------------------------------------------------


@router.get("/{ident}/inventory")
def get_inventory(ident: str, version: Version = Depends(api_version),
                  db: Database = Depends(database)) -> dict[str, Any]:
    """What inspection found (API 1.81)."""
    if version < INVENTORY_VERSION:
        raise NotFound(f"The node inventory needs API version "
                       f"{format_version(INVENTORY_VERSION)}.")
    with db.session() as session:
        node = find_node(session, ident, version)
        row = session.scalar(select(NodeInventory).where(NodeInventory.node_id == node.id))
        if row is None:
            raise NotFound(f"Node {node.uuid} inventory could not be found.")
        return {"inventory": row.inventory_data, "plugin_data": row.plugin_data}
