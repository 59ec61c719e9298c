"""/v1/ports and /v1/nodes/{node}/ports."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from services.api import collection, port_fields
from services.api.deps import (
    SUBCOLLECTIONS_VERSION,
    api_version,
    conductor,
    database,
    find_node,
    find_portgroup,
    require_version,
)
from services.api.patch import apply_patch, validate_patch
from services.api.policy_gate import project_filter
from services.api.policy_lookup import owned_or_leased
from services.api.responses import rendered
from services.api.routing import api_router
from services.api.shards import VERSION as SHARD_VERSION
from services.api.versions import Version
from services.api.views import (
    PORT_FIELD_VERSIONS,
    PORT_LIST_FIELDS,
    VTEP_KEYS,
    VTEP_VERSION,
    port_document,
    visible_fields,
    vtep_allowed,
)
from services.common import validation
from services.common.db import Database
from services.common.exceptions import (
    Conflict,
    Invalid,
    NotAcceptable,
    NotFound,
    conflict_from_integrity,
)
from services.common.macs import parse_mac
from services.common.models import Node, Port, Portgroup
from services.common.optimistic import retrying_stale
from services.common.validation import is_uuid
from services.conductor.interface import ConductorAPI

router = api_router()

WRITABLE = frozenset({"address", "node_uuid", "extra", "local_link_connection",
                      "physical_network", "pxe_enabled", "is_smartnic", "portgroup_uuid", "name",
                      *port_fields.PORT_TEXTS, *port_fields.PORT_FLAGS})
# Fields from this version on are Ironic's 406 below their version (older ones: 400, as ever).
NOT_ACCEPTABLE_SINCE: Version = (1, 88)
CREATABLE = WRITABLE | {"uuid"}
LOCAL_LINK_KEYS = {"switch_id", "port_id", "switch_info", "network_type"}
SORTABLE = {"uuid", "address", "created_at", "updated_at", "physical_network", "id"}
REMOVED_DEFAULTS: dict[str, Any] = {"extra": {}, "local_link_connection": {},
                                    "physical_network": None, "pxe_enabled": True,
                                    "is_smartnic": False, "portgroup_uuid": None, "name": None,
                                    **dict.fromkeys(port_fields.PORT_TEXTS),
                                    **{field: default for field, (default, _since)
                                       in port_fields.PORT_FLAGS.items()}}


def normalize_mac(value: Any) -> str:
    mac = parse_mac(value)
    if mac is None:
        raise Invalid(f"Expected a MAC address but received {value!a}.")
    return mac


def _too_new(fields: Any, version: Version) -> None:
    """Ironic's 406 for a field newer than the request (those of NOT_ACCEPTABLE_SINCE on)."""
    if any(PORT_FIELD_VERSIONS.get(f, (1, 1)) >= NOT_ACCEPTABLE_SINCE and
           PORT_FIELD_VERSIONS[f] > version for f in fields):
        raise NotAcceptable("Request not acceptable.")


def _check(values: dict[str, Any], version: Version,
           name_error: str = "Cannot create port with invalid name '{name}'",
           creating: bool = True) -> dict[str, Any]:
    _too_new(values, version)
    unknown = [k for k in values if k not in CREATABLE or (PORT_FIELD_VERSIONS.get(k, (9, 9))
               > version and k != "uuid")]
    if unknown:
        raise Invalid(f"Unknown attribute(s) for port: {', '.join(sorted(unknown))}.")
    clean = port_fields.checked_texts(values, port_fields.PORT_TEXTS, port_fields.PORT_FLAGS)
    clean["address"] = normalize_mac(values.get("address"))
    for field in ("extra", "local_link_connection"):
        clean[field] = validation.json_object(field, clean.get(field) or {})
    link = clean["local_link_connection"]
    vtep = [key for key in VTEP_KEYS if key in link]
    if len(vtep) == 1:  # Ironic's dependentRequired: both switches or neither
        missing = next(key for key in VTEP_KEYS if key not in link)
        raise Invalid(f"Invalid local_link_connection: {missing!r} is a dependency of "
                      f"{vtep[0]!r}")
    extra_keys = set(link) - LOCAL_LINK_KEYS - set(VTEP_KEYS)
    if extra_keys:
        raise Invalid(f"Invalid local_link_connection: unknown key(s) {sorted(extra_keys)}; "
                      f"allowed are {sorted(LOCAL_LINK_KEYS)}.")
    if vtep and not vtep_allowed(version) and creating:  # after Ironic's schema, as Ironic
        raise NotAcceptable("Request not acceptable.")  # Ironic's answer below 1.90, from 1.105
    clean["local_link_connection"] = {
        key: validation.text(f"local_link_connection/{key}", value,
                             limit_of="local_link_connection")
        for key, value in clean["local_link_connection"].items()}
    for field in ("pxe_enabled", "is_smartnic"):
        if field in clean:
            clean[field] = validation.boolean(field, clean[field])
    if clean.get("name") is not None and not validation.is_valid_name(clean["name"]):
        raise Invalid(name_error.replace("{name}", validation.as_sent(clean["name"])))
    if clean.get("physical_network") is not None:
        clean["physical_network"] = validation.text("physical_network",
                                                    clean["physical_network"])
    if clean.get("portgroup_uuid") is not None:
        clean["portgroup_uuid"] = validation.uuid_value("portgroup_uuid",
                                                        clean["portgroup_uuid"])
    if "uuid" in clean:
        if clean["uuid"] is None:
            del clean["uuid"]  # a new one is generated, as Ironic does
        else:
            clean["uuid"] = validation.uuid_value("uuid", clean["uuid"])
    return clean


def _render(request: Request, ports: list[Port], fields: list[str]) -> list[dict[str, Any]]:
    return [port_document(request, port, port.node.uuid, fields,
                          port.portgroup.uuid if port.portgroup else None) for port in ports]


def portgroup_id(session: Session, values: dict[str, Any], node_id: int) -> dict[str, Any]:
    """``values`` with ``portgroup_uuid`` turned into the id of that group of node ``node_id``
    (400 if it is not one: Ironic's texts)."""
    if "portgroup_uuid" not in values:  # not given (or older than 1.24): unchanged
        return values
    values = dict(values)
    group_uuid = values.pop("portgroup_uuid")
    if group_uuid is None:
        return {**values, "portgroup_id": None}
    group = session.scalar(select(Portgroup).where(Portgroup.uuid == group_uuid))
    if group is None:
        raise Invalid(f"Portgroup {group_uuid} could not be found.")
    if group.node_id != node_id:
        raise Invalid("Port can not be added to a portgroup belonging to a different node.")
    if values.get("pxe_enabled") and not group.standalone_ports_supported:
        raise Conflict(f"Port group {group.uuid} doesn't support standalone ports. This port "
                       "cannot be created as a member of that portgroup as the port's "
                       "'pxe_enabled' field was set to True.")
    return {**values, "portgroup_id": group.id}


def _list(request: Request, version: Version, db: Database, detail: bool, path: str,
          node_ident: str | None = None, portgroup_ident: str | None = None
          ) -> dict[str, Any]:
    visible = visible_fields(PORT_FIELD_VERSIONS, version)
    query = collection.parse_list_query(request, version=version, visible=visible,
                                        summary=PORT_LIST_FIELDS, sortable=SORTABLE,
                                        detail_path=detail)
    with db.session() as session:
        statement: Select[tuple[Port]] = select(Port).options(
            joinedload(Port.node).load_only(Node.uuid),
            joinedload(Port.portgroup).load_only(Portgroup.uuid))
        portgroup_ident = portgroup_ident or request.query_params.get("portgroup")
        if portgroup_ident:
            statement = statement.where(
                Port.portgroup_id == find_portgroup(session, portgroup_ident).id)
        node_ident = node_ident or request.query_params.get("node") or (
            request.query_params.get("node_uuid"))
        if node_ident:
            statement = statement.where(Port.node_id == find_node(session, node_ident,
                                                                  version).id)
        if project := project_filter(request):  # ports of the nodes a project owns or leases
            statement = statement.where(Port.node_id.in_(owned_or_leased(project)))
        if address := request.query_params.get("address"):
            statement = statement.where(Port.address == address.lower())
        statement = port_fields.port_filters(statement, request.query_params)
        shard = request.query_params.get("shard")
        collection.require_filter_version(version, SHARD_VERSION, shard)
        if shard is not None:  # the ports of the nodes in these shards (1.82)
            statement = statement.where(Port.node_id.in_(select(Node.id).where(
                Node.shard.in_([s for s in shard.split(",") if s]))))
        marker = collection.marker_row(session, Port.uuid, query.marker)
        ports = collection.page(session, statement, query, Port.id,
                                getattr(Port, query.sort_key), marker)
        documents = _render(request, ports, query.fields)
    return {"ports": documents,
            **collection.next_link(request, path, ports, query, lambda p: p.uuid)}


def _find(session: Session, ident: str) -> Port:
    """A port by UUID, or by name (API 1.88), as Ironic's Port.get."""
    where = Port.uuid == ident.lower() if is_uuid(ident) else Port.name == ident
    port = session.scalar(select(Port).options(joinedload(Port.node),
                                               joinedload(Port.portgroup)).where(where))
    if port is None:
        raise NotFound(f"Port {ident} could not be found.")
    return port


@router.get("/v1/ports")
def list_ports(request: Request, version: Version = Depends(api_version),
               db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, False, "ports")


@router.get("/v1/ports/detail")
def list_ports_detail(request: Request, version: Version = Depends(api_version),
                      db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, True, "ports/detail")


@router.get("/v1/nodes/{ident}/ports")
def list_node_ports(ident: str, request: Request, version: Version = Depends(api_version),
                    db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, False, f"nodes/{ident}/ports", node_ident=ident)


@router.get("/v1/nodes/{ident}/ports/detail")
def list_node_ports_detail(ident: str, request: Request,
                           version: Version = Depends(api_version),
                           db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, True, f"nodes/{ident}/ports/detail", node_ident=ident)


@router.get("/v1/portgroups/{ident}/ports")
def list_portgroup_ports(ident: str, request: Request, version: Version = Depends(api_version),
                         db: Database = Depends(database)) -> dict[str, Any]:
    require_version(version, SUBCOLLECTIONS_VERSION)
    return _list(request, version, db, False, f"portgroups/{ident}/ports", portgroup_ident=ident)


@router.get("/v1/portgroups/{ident}/ports/detail")
def list_portgroup_ports_detail(ident: str, request: Request,
                                version: Version = Depends(api_version),
                                db: Database = Depends(database)) -> dict[str, Any]:
    require_version(version, SUBCOLLECTIONS_VERSION)
    return _list(request, version, db, True, f"portgroups/{ident}/ports/detail",
                 portgroup_ident=ident)


@router.get("/v1/ports/{ident}")
def show_port(ident: str, request: Request, version: Version = Depends(api_version),
              db: Database = Depends(database)) -> dict[str, Any]:
    fields = collection.single_fields(request, version, PORT_FIELD_VERSIONS)
    with db.session() as session:
        port = _find(session, ident)
        return _render(request, [port], fields)[0]


@router.post("/v1/ports", status_code=201)
def create_port(request: Request, body: Any = Body(...),
                version: Version = Depends(api_version),
                db: Database = Depends(database)) -> Response:
    if not isinstance(body, dict):
        raise Invalid("Invalid port: expected a JSON object.")
    port_fields.refuse_newer_port_fields(body, version)
    body = dict(body)
    node_ident = port_fields.node_of_new_port(body, version)
    values = _check(body, version)
    try:
        with db.session() as session:
            node = find_node(session, node_ident, version)
            port = Port(**portgroup_id(session, values, node.id), node_id=node.id)
            session.add(port)
            session.flush()
            session.refresh(port, ["node"])
            document = _render(request, [port], visible_fields(PORT_FIELD_VERSIONS, version))[0]
            return rendered(document, 201, {"Location": f"{request.base_url}v1/ports/{port.uuid}"})
    except IntegrityError as exc:
        raise conflict_from_integrity(exc, values) from None


@router.patch("/v1/ports/{ident}")
def update_port(ident: str, request: Request, patch: Any = Body(...),
                version: Version = Depends(api_version), db: Database = Depends(database),
                manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    with db.session() as session:
        port_uuid = _find(session, ident).uuid
    for operation in validate_patch(patch):
        field = operation["path"].lstrip("/").split("/")[0]
        _too_new([field], version)
        if (field == "local_link_connection" and version < VTEP_VERSION
                and any(key in json.dumps(operation.get("value")) for key in VTEP_KEYS)):
            raise NotAcceptable("Request not acceptable.")  # Ironic's answer below 1.90
        port_fields.refuse_newer_port_fields((field,), version)
        if field not in WRITABLE or PORT_FIELD_VERSIONS[field] > version:
            raise Invalid(f"'/{field}' can not be updated on a port.")

    def attempt() -> None:  # again on the fresh port while another writer won (409 at last)
        with db.session() as session:
            port = _find(session, port_uuid)
            node = port.node
            stored = {f: getattr(port, f) for f in WRITABLE - {"node_uuid", "portgroup_uuid"}}
            group_uuid = port.portgroup.uuid if port.portgroup else None
        # A field the patch removed goes back to its default (address and node stay required).
        patched = REMOVED_DEFAULTS | apply_patch(
            {**stored, "node_uuid": node.uuid, "portgroup_uuid": group_uuid}, patch)
        # Fields newer than the request's version keep their stored values.
        values = _check({k: v for k, v in patched.items()
                         if k != "node_uuid" and PORT_FIELD_VERSIONS[k] <= version}, version,
                        f"Port {ident}: Cannot change name to invalid name '{{name}}'", False)
        with db.session() as session:
            node_id = node.id
            new_node_uuid = None
            if patched.get("node_uuid") != node.uuid:
                node_ident = validation.node_ident("node_uuid", patched.get("node_uuid"))
                new_node = find_node(session, node_ident, version)
                new_node_uuid, node_id = new_node.uuid, new_node.id
            values = portgroup_id(session, values, node_id)
        manager.update_port(port_uuid, values, node_uuid=new_node_uuid,
                            expected={**stored, "node_id": node.id})

    retrying_stale(attempt)
    with db.session() as session:
        return _render(request, [_find(session, port_uuid)],
                       visible_fields(PORT_FIELD_VERSIONS, version))[0]


@router.delete("/v1/ports/{ident}", status_code=204)
def delete_port(ident: str, db: Database = Depends(database),
                manager: ConductorAPI = Depends(conductor)) -> Response:
    with db.session() as session:
        port = _find(session, ident)
    manager.destroy_port(port.uuid)
    return Response(status_code=204)
