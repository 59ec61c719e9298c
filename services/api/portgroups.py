"""/v1/portgroups, /v1/nodes/{node}/portgroups and /v1/portgroups/{group}/ports (API 1.23+).

As Ironic's: a port group belongs to a node and bonds some of its ports; ``mode`` and
``properties`` are from 1.26 (406 below it), the sub-collections from 1.24. Creation is written
here; changes and deletion go through the conductor that owns the node (port_ops.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

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
from services.api.ports import normalize_mac
from services.api.responses import rendered
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import (
    PORTGROUP_FIELD_VERSIONS,
    PORTGROUP_LIST_FIELDS,
    portgroup_document,
    visible_fields,
)
from services.common import validation
from services.common.db import Database
from services.common.exceptions import Invalid, NotAcceptable, conflict_from_integrity
from services.common.models import Node, Portgroup
from services.common.optimistic import retrying_stale
from services.conductor.interface import ConductorAPI

router = api_router()

MODE_VERSION: Version = (1, 26)
DEFAULT_MODE = "active-backup"  # Ironic's [DEFAULT]default_portgroup_mode
WRITABLE = frozenset({"address", "extra", "mode", "name", "node_uuid", "properties",
                      "standalone_ports_supported", *port_fields.PORTGROUP_TEXTS,
                      *port_fields.PORTGROUP_FLAGS})
CREATABLE = WRITABLE | {"uuid"}
SORTABLE = {"uuid", "name", "address", "created_at", "updated_at", "id"}
REMOVED_DEFAULTS: dict[str, Any] = {"address": None, "extra": {}, "name": None,
                                    "properties": {}, "standalone_ports_supported": True,
                                    **dict.fromkeys(port_fields.PORTGROUP_TEXTS),
                                    **{field: default for field, (default, _since)
                                       in port_fields.PORTGROUP_FLAGS.items()}}


def _check(values: dict[str, Any], name_error: str) -> dict[str, Any]:
    """Checked, normalised port group values (without node_uuid)."""
    unknown = sorted(set(values) - CREATABLE)
    if unknown:
        raise Invalid(f"Unknown attribute(s) for portgroup: {', '.join(unknown)}.")
    clean = port_fields.checked_texts({k: v for k, v in values.items() if k != "node_uuid"},
                                      port_fields.PORTGROUP_TEXTS,
                                      port_fields.PORTGROUP_FLAGS)
    if clean.get("name") is not None and not validation.is_valid_name(clean["name"]):
        raise Invalid(name_error.replace("{name}", validation.as_sent(clean["name"])))
    if clean.get("address") is not None:
        clean["address"] = normalize_mac(clean["address"])
    for field in ("extra", "properties"):
        if field in clean:
            clean[field] = validation.json_object(field, clean[field] or {})
    if clean.get("standalone_ports_supported") is None:
        clean.pop("standalone_ports_supported", None)
    else:
        clean["standalone_ports_supported"] = validation.boolean(
            "standalone_ports_supported", clean["standalone_ports_supported"])
    if clean.get("mode") is not None:
        clean["mode"] = validation.text("mode", clean["mode"])
    if "uuid" in clean:
        if clean["uuid"] is None:
            del clean["uuid"]
        else:
            clean["uuid"] = validation.uuid_value("uuid", clean["uuid"])
    return clean


def _render(request: Request, groups: list[Portgroup], fields: list[str]) -> list[dict[str, Any]]:
    return [portgroup_document(request, group, group.node.uuid, fields) for group in groups]


def _list(request: Request, version: Version, db: Database, detail: bool, path: str,
          node_ident: str | None = None) -> dict[str, Any]:
    require_version(version)
    visible = visible_fields(PORTGROUP_FIELD_VERSIONS, version)
    query = collection.parse_list_query(request, version=version, visible=visible,
                                        summary=PORTGROUP_LIST_FIELDS, sortable=SORTABLE,
                                        detail_path=detail)
    with db.session() as session:
        statement: Select[tuple[Portgroup]] = select(Portgroup).options(
            joinedload(Portgroup.node).load_only(Node.uuid))
        node_ident = node_ident or request.query_params.get("node")
        if node_ident:
            statement = statement.where(
                Portgroup.node_id == find_node(session, node_ident, version).id)
        if project := project_filter(request):  # of the nodes a project owns or leases
            statement = statement.where(Portgroup.node_id.in_(owned_or_leased(project)))
        if address := request.query_params.get("address"):
            statement = statement.where(Portgroup.address == address.lower())
        statement = port_fields.portgroup_filters(statement, request.query_params, version,
                                                  node_ident)
        marker = collection.marker_row(session, Portgroup.uuid, query.marker)
        groups = collection.page(session, statement, query, Portgroup.id,
                                 getattr(Portgroup, query.sort_key), marker)
        documents = _render(request, groups, query.fields)
    return {"portgroups": documents,
            **collection.next_link(request, path, groups, query, lambda g: g.uuid)}


@router.get("/v1/portgroups")
def list_portgroups(request: Request, version: Version = Depends(api_version),
                    db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, False, "portgroups")


@router.get("/v1/portgroups/detail")
def list_portgroups_detail(request: Request, version: Version = Depends(api_version),
                           db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, True, "portgroups/detail")


@router.get("/v1/nodes/{ident}/portgroups")
def list_node_portgroups(ident: str, request: Request, version: Version = Depends(api_version),
                         db: Database = Depends(database)) -> dict[str, Any]:
    require_version(version, SUBCOLLECTIONS_VERSION)
    return _list(request, version, db, False, f"nodes/{ident}/portgroups", node_ident=ident)


@router.get("/v1/nodes/{ident}/portgroups/detail")
def list_node_portgroups_detail(ident: str, request: Request,
                                version: Version = Depends(api_version),
                                db: Database = Depends(database)) -> dict[str, Any]:
    require_version(version, SUBCOLLECTIONS_VERSION)
    return _list(request, version, db, True, f"nodes/{ident}/portgroups/detail",
                 node_ident=ident)


@router.get("/v1/portgroups/{ident}")
def show_portgroup(ident: str, request: Request, version: Version = Depends(api_version),
                   db: Database = Depends(database)) -> dict[str, Any]:
    require_version(version)
    fields = collection.single_fields(request, version, PORTGROUP_FIELD_VERSIONS)
    with db.session() as session:
        return _render(request, [find_portgroup(session, ident)], fields)[0]


@router.post("/v1/portgroups", status_code=201)
def create_portgroup(request: Request, body: Any = Body(...),
                     version: Version = Depends(api_version),
                     db: Database = Depends(database)) -> Response:
    require_version(version)
    if not isinstance(body, dict):
        raise Invalid("Invalid portgroup: expected a JSON object.")
    if not body.get("node_uuid"):
        raise Invalid("Mandatory field missing: node_uuid.")
    if version < MODE_VERSION and (body.get("mode") or body.get("properties")):
        raise NotAcceptable("Request not acceptable.")
    values = _check(body, "Cannot create portgroup with invalid name '{name}'")
    values.setdefault("mode", DEFAULT_MODE)
    node_ident = validation.node_ident("node_uuid", body["node_uuid"])
    try:
        with db.session() as session:
            node = find_node(session, node_ident, version)
            group = Portgroup(**values, node_id=node.id)
            session.add(group)
            session.flush()
            session.refresh(group, ["node"])
            document = _render(request, [group],
                               visible_fields(PORTGROUP_FIELD_VERSIONS, version))[0]
            return rendered(document, 201,
                            {"Location": f"{request.base_url}v1/portgroups/{group.uuid}"})
    except IntegrityError as exc:
        raise conflict_from_integrity(exc, values, "portgroup") from None


@router.patch("/v1/portgroups/{ident}")
def update_portgroup(ident: str, request: Request, patch: Any = Body(...),
                     version: Version = Depends(api_version), db: Database = Depends(database),
                     manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    require_version(version)
    with db.session() as session:
        group_uuid = find_portgroup(session, ident).uuid
    for operation in validate_patch(patch):
        field = operation["path"].lstrip("/").split("/")[0]
        if field not in WRITABLE:
            raise Invalid(f"'/{field}' can not be updated on a portgroup.")
        if field in ("mode", "properties") and version < MODE_VERSION:
            raise NotAcceptable("Request not acceptable.")

    def attempt() -> None:  # again on the fresh group while another writer won (409 at last)
        with db.session() as session:
            group = find_portgroup(session, group_uuid)
            node = group.node
            stored = {f: getattr(group, f) for f in WRITABLE - {"node_uuid"}}
        patched = apply_patch({**stored, "node_uuid": node.uuid}, patch)
        if "mode" not in patched:
            raise Invalid("'mode' is a mandatory attribute and can not be removed")
        patched = REMOVED_DEFAULTS | patched
        values = _check({k: v for k, v in patched.items() if k != "node_uuid"},
                        f"Portgroup {ident}: Cannot change name to invalid name '{{name}}'")
        new_node_uuid = None
        if patched.get("node_uuid") != node.uuid:
            node_ident = validation.node_ident("node_uuid", patched.get("node_uuid"))
            with db.session() as session:
                new_node_uuid = find_node(session, node_ident, version).uuid
        manager.update_portgroup(group_uuid, values, node_uuid=new_node_uuid,
                                 expected={**stored, "node_id": node.id})

    retrying_stale(attempt)
    with db.session() as session:
        return _render(request, [find_portgroup(session, group_uuid)],
                       visible_fields(PORTGROUP_FIELD_VERSIONS, version))[0]


@router.delete("/v1/portgroups/{ident}", status_code=204)
def delete_portgroup(ident: str, version: Version = Depends(api_version),
                     db: Database = Depends(database),
                     manager: ConductorAPI = Depends(conductor)) -> Response:
    require_version(version)
    with db.session() as session:
        group_uuid = find_portgroup(session, ident).uuid
    manager.destroy_portgroup(group_uuid)
    return Response(status_code=204)
