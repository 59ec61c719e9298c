"""/v1/nodes: the node collection, single nodes, and their states, management and traits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import collection, node_rules
from services.api.deps import api_version, conductor, database, find_node
from services.api.patch import apply_patch, validate_patch
from services.api.versions import MAX_VERSION, Version, format_version
from services.api.views import (
    NODE_FIELD_VERSIONS,
    NODE_LIST_FIELDS,
    NODE_STATES_FIELDS,
    node_document,
    visible_fields,
)
from services.common import states
from services.common.db import Database
from services.common.enrollment import new_node
from services.common.exceptions import Invalid, NotFound, conflict_from_integrity
from services.common.membership import Membership
from services.common.models import Allocation, Node, NodeInventory
from services.conductor.interface import ConductorAPI
from services.drivers.base import BOOT_DEVICES

router = APIRouter(prefix="/v1/nodes")

SORTABLE = {"uuid", "name", "driver", "provision_state", "power_state", "maintenance",
            "resource_class", "conductor_group", "owner", "lessee", "created_at", "updated_at",
            "provision_updated_at", "instance_uuid", "id"}
FILTERS = ("provision_state", "maintenance", "associated", "driver", "resource_class",
           "conductor_group", "owner", "lessee", "fault", "instance_uuid", "retired",
           "description_contains")


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
        documents = []
        for node in nodes:
            document = node_document(
                self.request, node, self.fields,
                allocation_uuid=allocations.get(node.allocation_id or -1),
                conductor=self._owner(node),
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
    visible = full_fields(version)
    return collection.requested_fields(request, version, visible) or visible


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
        elif name == "description_contains":
            statement = statement.where(Node.description.contains(raw))
        else:
            statement = statement.where(getattr(Node, name) == raw)
    return statement


def _list(request: Request, version: Version, db: Database, detail_path: bool,
          path: str) -> dict[str, Any]:
    visible = full_fields(version)
    query = collection.parse_list_query(
        request, version=version, visible=visible, summary=NODE_LIST_FIELDS,
        sortable=SORTABLE & set(visible) | {"id"}, detail_path=detail_path,
    )
    with db.session() as session:
        marker = None
        if query.marker:
            marker = session.scalar(select(Node).where(Node.uuid == query.marker))
            if marker is None:
                raise Invalid(f"Marker {query.marker} could not be found.")
        nodes = collection.page(session, _filtered(request, version), query, Node.id,
                                getattr(Node, query.sort_key), marker)
        documents = NodeRenderer(request, session, version, query.fields).render(nodes)
    return {"nodes": documents,
            **collection.next_link(request, path, nodes, query, lambda n: n.uuid)}


@router.get("")
def list_nodes(request: Request, version: Version = Depends(api_version),
               db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, detail_path=False, path="nodes")


@router.get("/detail")
def list_nodes_detail(request: Request, version: Version = Depends(api_version),
                      db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, detail_path=True, path="nodes/detail")


# -- single nodes --------------------------------------------------------------------------


@router.post("", status_code=201)
def create_node(request: Request, response: Response, body: Any = Body(...),
                version: Version = Depends(api_version), db: Database = Depends(database)
                ) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid("Invalid node: expected a JSON object.")
    unknown = [k for k in body if k not in node_rules.CREATABLE
               or (k != "uuid" and not node_rules.field_known(k, version))]
    if unknown:
        raise Invalid(f"Unknown attribute(s) for node: {', '.join(sorted(unknown))}.")
    if "driver" not in body:
        raise Invalid("Mandatory field missing: driver.")
    values = node_rules.values_for_create(
        body, request.app.state.settings.default_resource_class, request.app.state.drivers)
    try:
        with db.session() as session:
            node = new_node(values, enroll=version >= (1, 11))
            session.add(node)
            session.flush()
            document = NodeRenderer(request, session, version, full_fields(version)).one(node)
    except IntegrityError as exc:
        raise conflict_from_integrity(exc, values) from None
    response.headers["Location"] = f"{request.base_url}v1/nodes/{node.uuid}"
    return document


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
            raise Invalid(f"Unknown attribute for node: {field}")
    with db.session() as session:
        node = find_node(session, ident, version)
        current = {field: getattr(node, field) for field in node_rules.WRITABLE}
    patched = {field: None for field in node_rules.WRITABLE} | apply_patch(current, patch)
    if patched["driver"] != current["driver"]:
        # Interfaces the patch left alone start again from the new type's defaults.
        for field in node_rules.INTERFACE_FIELDS:
            if patched[field] == current[field]:
                patched[field] = None
    values = node_rules.check_values(patched, request.app.state.drivers)
    changed = {field: value for field, value in values.items() if value != current[field]}
    if changed:
        manager.update_node(node.uuid, changed)
    with db.session() as session:
        node = find_node(session, node.uuid, version)
        return NodeRenderer(request, session, version, full_fields(version)).one(node)


@router.delete("/{ident}", status_code=204)
def delete_node(ident: str, version: Version = Depends(api_version),
                db: Database = Depends(database),
                manager: ConductorAPI = Depends(conductor)) -> Response:
    with db.session() as session:
        node = find_node(session, ident, version)
    manager.destroy_node(node.uuid)
    return Response(status_code=204)


# -- states --------------------------------------------------------------------------------


@router.get("/{ident}/states")
def node_states(ident: str, request: Request, version: Version = Depends(api_version),
                db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        node = find_node(session, ident, version)
        fields = [f for f in NODE_STATES_FIELDS if f in full_fields(version)]
        return NodeRenderer(request, session, version, fields).one(node)


def _accepted(request: Request, node: Node) -> Response:
    return Response(status_code=202,
                    headers={"Location": f"{request.base_url}v1/nodes/{node.uuid}/states"})


@router.put("/{ident}/states/provision", status_code=202)
def set_provision_state(ident: str, request: Request, body: Any = Body(...),
                        version: Version = Depends(api_version),
                        db: Database = Depends(database),
                        manager: ConductorAPI = Depends(conductor)) -> Response:
    if not isinstance(body, dict) or "target" not in body:
        raise Invalid("Invalid request: a provision state change needs a \"target\".")
    known = {"target", "configdrive", "clean_steps", "deploy_steps", "rescue_password",
             "disable_ramdisk"}
    unknown = set(body) - known
    if unknown:
        raise Invalid(f"Unknown attribute(s) for a provision state change: "
                      f"{', '.join(sorted(unknown))}.")
    target = body["target"]
    if not isinstance(target, str) or target not in states.API_TARGET_EVENTS or (
        version < states.API_TARGET_MIN_VERSION.get(target, (1, 1))
    ):
        raise Invalid(f"The requested provision state target \"{target}\" is not valid at API "
                      f"version {version[0]}.{version[1]}.")
    if body.get("configdrive") is not None and target not in ("active", "deploy", "rebuild"):
        raise Invalid("A config drive can only be given when deploying or rebuilding.")
    if isinstance(body.get("configdrive"), dict) and version < (1, 56):
        raise Invalid("A config drive given as JSON needs API version 1.56 or newer.")
    with db.session() as session:
        node = find_node(session, ident, version)
    options = {k: v for k, v in body.items() if k != "target"}
    manager.do_provisioning_action(node.uuid, target, options)
    return _accepted(request, node)


@router.put("/{ident}/states/power", status_code=202)
def set_power_state(ident: str, request: Request, body: Any = Body(...),
                    version: Version = Depends(api_version), db: Database = Depends(database),
                    manager: ConductorAPI = Depends(conductor)) -> Response:
    if not isinstance(body, dict) or "target" not in body:
        raise Invalid("Invalid request: a power state change needs a \"target\".")
    unknown = set(body) - {"target", "timeout"}
    if unknown:
        raise Invalid(f"Unknown attribute(s) for a power state change: "
                      f"{', '.join(sorted(unknown))}.")
    timeout = body.get("timeout")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)
                                or timeout < 1):
        raise Invalid("Invalid timeout: expected a positive number of seconds.")
    with db.session() as session:
        node = find_node(session, ident, version)
    manager.change_power_state(node.uuid, body["target"], timeout)
    return _accepted(request, node)


# -- management, maintenance, validation ---------------------------------------------------


@router.get("/{ident}/management/boot_device")
def get_boot_device(ident: str, version: Version = Depends(api_version),
                    db: Database = Depends(database),
                    manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    with db.session() as session:
        node = find_node(session, ident, version)
    return manager.get_boot_device(node.uuid)


@router.get("/{ident}/management/boot_device/supported")
def supported_boot_devices(ident: str, version: Version = Depends(api_version),
                           db: Database = Depends(database),
                           manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    with db.session() as session:
        node = find_node(session, ident, version)
    return {"supported_boot_devices": manager.get_supported_boot_devices(node.uuid)}


@router.put("/{ident}/management/boot_device", status_code=204)
def set_boot_device(ident: str, body: Any = Body(...), version: Version = Depends(api_version),
                    db: Database = Depends(database),
                    manager: ConductorAPI = Depends(conductor)) -> Response:
    if not isinstance(body, dict) or not isinstance(body.get("boot_device"), str):
        raise Invalid("Invalid request: expected {\"boot_device\": ..., \"persistent\": ...}.")
    if body["boot_device"] not in BOOT_DEVICES:
        raise Invalid(f"Invalid boot device {body['boot_device']!r}, expected one of "
                      f"{', '.join(BOOT_DEVICES)}.")
    persistent = body.get("persistent", False)
    if not isinstance(persistent, bool):
        raise Invalid("Invalid value for persistent: expected true or false.")
    with db.session() as session:
        node = find_node(session, ident, version)
    manager.set_boot_device(node.uuid, body["boot_device"], persistent)
    return Response(status_code=204)


@router.put("/{ident}/maintenance", status_code=202)
def set_maintenance(ident: str, body: Any = Body(None), version: Version = Depends(api_version),
                    db: Database = Depends(database)) -> Response:
    reason = body.get("reason") if isinstance(body, dict) else None
    if reason is not None and not isinstance(reason, str):
        raise Invalid("Invalid maintenance reason: expected a string.")
    with db.session() as session:
        node = find_node(session, ident, version)
        node.maintenance = True
        node.maintenance_reason = reason
    return Response(status_code=202)


@router.delete("/{ident}/maintenance", status_code=202)
def unset_maintenance(ident: str, version: Version = Depends(api_version),
                      db: Database = Depends(database)) -> Response:
    with db.session() as session:
        node = find_node(session, ident, version)
        node.maintenance = False
        node.maintenance_reason = None
        node.fault = None
    return Response(status_code=202)


@router.get("/{ident}/validate")
def validate_node(ident: str, version: Version = Depends(api_version),
                  db: Database = Depends(database),
                  manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    with db.session() as session:
        node = find_node(session, ident, version)
    result = manager.validate(node.uuid)
    if version < (1, 40):
        result.pop("bios", None)
    return {k: v for k, v in result.items()
            if node_rules.field_known(f"{k}_interface", version)
            or k in ("power", "deploy", "console", "management")}


# -- inventory -----------------------------------------------------------------------------


@router.get("/{ident}/inventory")
def get_inventory(ident: str, version: Version = Depends(api_version),
                  db: Database = Depends(database)) -> dict[str, Any]:
    """What inspection found (Ironic 1.81, served here at the newest version, 1.73)."""
    if version < MAX_VERSION:
        raise Invalid(f"The node inventory needs API version {format_version(MAX_VERSION)}.",
                      code=404)
    with db.session() as session:
        node = find_node(session, ident, version)
        row = session.scalar(select(NodeInventory).where(NodeInventory.node_id == node.id))
        if row is None:
            raise NotFound(f"Node {node.uuid} inventory could not be found.")
        return {"inventory": row.inventory_data, "plugin_data": row.plugin_data}


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
    traits = node_rules.check_traits(body["traits"])
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
    manager.update_traits(node.uuid, add=node_rules.check_traits([trait]))
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
