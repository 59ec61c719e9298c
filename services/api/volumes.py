"""/v1/volume: volume connectors and targets (API 1.32), and /v1/nodes/{node}/volume.

As Ironic's (ironic/api/controllers/v1/volume*.py): ``/v1/volume`` and a node's ``volume`` are
links; connectors and targets are listed, shown, created, changed and deleted under
``/v1/volume/{connectors,targets}``; a node's sub-collections only list (anything else there
is 400 "Malformed request URI."). Bodies are checked as Ironic's JSON schemas do, with its
texts; changes and deletion go through the conductor that owns the node (volume_ops.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from services.api import collection, policy
from services.api.deps import api_version, conductor, database, find_node, require_version
from services.api.patch import apply_patch, validate_patch
from services.api.policy_gate import project_filter
from services.api.policy_lookup import owned_or_leased
from services.api.responses import rendered
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import links, timestamp, visible_fields
from services.common import validation
from services.common.db import Database
from services.common.exceptions import Invalid, NotFound
from services.common.models import Node
from services.common.secrets import mask
from services.common.volumes import KINDS, VolumeKind
from services.conductor.interface import ConductorAPI

router = api_router()

VOLUME_VERSION: Version = (1, 32)
MALFORMED = "Malformed request URI."
TIMESTAMPS = ("created_at", "updated_at")
# Ironic's default list fields, and the fields of its JSON schemas (type, required).
LIST_FIELDS = {"connectors": ("uuid", "node_uuid", "type", "connector_id"),
               "targets": ("uuid", "node_uuid", "volume_type", "boot_index", "volume_id")}
SCHEMA_NAMES = {"connectors": "connector", "targets": "target"}
REQUIRED = {"connectors": ("connector_id", "node_uuid", "type"),
            "targets": ("boot_index", "node_uuid", "volume_id", "volume_type")}
LIMITS = {"type": "connector_type", "connector_id": "connector_id",
          "volume_type": "volume_type", "volume_id": "volume_id"}
OBJECT_FIELDS = frozenset({"extra", "properties"})
REDACTED_PROPERTIES = ("** Value redacted: Requires permission "
                       "baremetal:volume:view_target_properties access. Permission denied. **")


def field_versions(kind: VolumeKind) -> dict[str, Version]:
    names = ("uuid", "node_uuid", *kind.own_fields, "extra", *TIMESTAMPS, "links")
    return {name: VOLUME_VERSION for name in names}


def _document(request: Request, kind: VolumeKind, row: Any, fields: list[str],
              shown: bool = False) -> dict[str, Any]:
    """``shown``: a GET, where a target's properties need view_target_properties (Ironic's
    redaction: iSCSI connection details) beside the secrets masked for everyone."""
    values: dict[str, Any] = {"uuid": row.uuid, "node_uuid": row.node.uuid}
    for name in (*kind.own_fields, "extra"):
        values[name] = mask(getattr(row, name)) if name == "properties" else getattr(row, name)
    if shown and "properties" in values and not policy.allowed(
            "baremetal:volume:view_target_properties",
            policy.caller(request),
            rules=policy.rules_of(request)):
        values["properties"] = {"redacted_contents": REDACTED_PROPERTIES}
    for name in TIMESTAMPS:
        values[name] = timestamp(getattr(row, name))
    values["links"] = links(request, f"volume/{kind.collection}", row.uuid)
    return {name: values[name] for name in fields if name in values}


def _schema_error(kind: VolumeKind, message: str) -> Invalid:
    return Invalid(f"Schema error for {SCHEMA_NAMES[kind.collection]}: {message}")


def _checked(kind: VolumeKind, body: Any) -> dict[str, Any]:
    """``body``'s fields as Ironic's schema and validators take them (node_uuid stays a UUID)."""
    if not isinstance(body, dict):
        raise _schema_error(kind, f"{validation.shown(body)} is not of type 'object'")
    allowed = {"uuid", "node_uuid", "extra", *kind.own_fields}
    unknown = sorted(set(body) - allowed)
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        verb = "were" if len(unknown) > 1 else "was"
        raise _schema_error(kind, f"Additional properties are not allowed ({listed} {verb} "
                                  "unexpected)")
    for name in REQUIRED[kind.collection]:
        if name not in body:
            raise _schema_error(kind, f"'{name}' is a required property")
    clean: dict[str, Any] = {}
    for name, value in body.items():
        if name in OBJECT_FIELDS:
            if value is not None and not isinstance(value, dict):
                raise _schema_error(kind, f"{validation.shown(value)} is not of type "
                                          "'object', 'null'")
            clean[name] = validation.json_object(name, value or {})
        elif name == "boot_index":
            if not isinstance(value, int) or isinstance(value, bool):
                raise _schema_error(kind, f"{validation.shown(value)} is not of type "
                                          "'integer'")
            clean[name] = value
        elif name in ("uuid", "node_uuid"):
            if value is not None:
                clean[name] = validation.uuid_value(name, value)
        else:
            if not isinstance(value, str):
                raise _schema_error(kind, f"{validation.shown(value)} is not of type 'string'")
            clean[name] = validation.text(name, value, limit_of=LIMITS[name])
    return clean


def _find(session: Session, kind: VolumeKind, ident: str) -> Any:
    """The connector or target ``ident`` (a UUID: Ironic's 400 otherwise), or 404."""
    path_name = f"{SCHEMA_NAMES[kind.collection]}_uuid"
    uuid = validation.uuid_value(path_name, ident)
    row = session.scalar(select(kind.model).options(joinedload(kind.model.node))
                         .where(kind.model.uuid == uuid))
    if row is None:
        raise NotFound(f"{kind.title} {ident} could not be found.")
    return row


def _volume_links(request: Request, resource: str) -> dict[str, Any]:
    return {"links": links(request, resource, ""),
            **{sub: links(request, resource, sub) for sub in ("connectors", "targets")}}


@router.get("/v1/volume")
@router.get("/v1/volume/")  # Ironic's own links end with a slash
def show_volume(request: Request, version: Version = Depends(api_version)) -> dict[str, Any]:
    require_version(version, VOLUME_VERSION)
    return _volume_links(request, "volume")


@router.get("/v1/nodes/{ident}/volume")
@router.get("/v1/nodes/{ident}/volume/")
def show_node_volume(ident: str, request: Request, version: Version = Depends(api_version),
                     db: Database = Depends(database)) -> dict[str, Any]:
    require_version(version, VOLUME_VERSION)
    with db.session() as session:
        find_node(session, ident, version)
    return _volume_links(request, f"nodes/{ident}/volume")


def _list(kind: VolumeKind, request: Request, version: Version, db: Database,
          node_ident: str | None) -> dict[str, Any]:
    require_version(version, VOLUME_VERSION)
    model = kind.model
    visible = visible_fields(field_versions(kind), version)
    sortable = {"uuid", *TIMESTAMPS, *kind.own_fields} - OBJECT_FIELDS
    query = collection.parse_list_query(request, version=version, visible=visible,
                                        summary=(*LIST_FIELDS[kind.collection], "links"),
                                        sortable=sortable, detail_since=VOLUME_VERSION)
    with db.session() as session:
        statement = select(model).options(joinedload(model.node).load_only(Node.uuid))
        node_ident = node_ident or request.query_params.get("node")
        if node_ident:
            statement = statement.where(model.node_id == find_node(session, node_ident,
                                                                   version).id)
        if project := project_filter(request):  # of the nodes a project owns or leases
            statement = statement.where(model.node_id.in_(owned_or_leased(project)))
        marker = collection.marker_row(session, model.uuid, query.marker)
        rows = collection.page(session, statement, query, model.id,
                               getattr(model, query.sort_key), marker)
        documents = [_document(request, kind, row, query.fields, shown=True) for row in rows]
    return {kind.collection: documents, **collection.next_link(
        request, f"volume/{kind.collection}", rows, query, lambda row: row.uuid)}


def _create(kind: VolumeKind, request: Request, body: Any, version: Version,
            db: Database) -> Response:
    require_version(version, VOLUME_VERSION)
    values = _checked(kind, body)
    node_uuid = values.pop("node_uuid", None)
    try:
        with db.session() as session:
            node = session.scalar(select(Node).where(Node.uuid == node_uuid))
            if node is None:
                raise Invalid("Invalid input for field/attribute node_uuid. Value: "
                              f"'{node_uuid}'.")
            row = kind.model(**values, node_id=node.id)
            session.add(row)
            session.flush()
            session.refresh(row, ["node"])
            document = _document(request, kind, row,
                                 visible_fields(field_versions(kind), version))
            location = f"{request.base_url}v1/volume/{kind.collection}/{row.uuid}"
            return rendered(document, 201, {"Location": location})
    except IntegrityError as exc:
        raise kind.conflict(exc, values) from None


def _patch(kind: VolumeKind, ident: str, request: Request, patch: Any, version: Version,
           db: Database, manager: ConductorAPI) -> dict[str, Any]:
    require_version(version, VOLUME_VERSION)
    allowed = sorted({"extra", "node_uuid", *kind.own_fields})
    with db.session() as session:
        row = _find(session, kind, ident)
        volume_uuid, node_uuid = row.uuid, row.node.uuid
        stored = {name: getattr(row, name) for name in (*kind.own_fields, "extra")}
    for operation in validate_patch(patch):
        if operation["path"].split("/")[1] not in allowed:
            raise Invalid(f"Cannot patch {operation['path']}. Only the following can be "
                          f"updated: {', '.join(allowed)}")
        if operation["path"] == "/node_uuid" and operation["op"] != "remove" and (
                not validation.is_uuid(operation["value"])):
            raise Invalid("Expected a UUID for node_uuid, but received "
                          f"{validation.as_sent(operation['value'])}.")
    patched = apply_patch({**stored, "node_uuid": node_uuid}, patch)
    values = _checked(kind, patched)
    new_node = values.pop("node_uuid")
    if new_node != node_uuid:
        with db.session() as session:
            if session.scalar(select(Node.id).where(Node.uuid == new_node)) is None:
                raise Invalid(f"Unable to apply the requested node_uuid '{new_node}'. "
                              "Requested value was invalid.")
    values = {"extra": {}, **({"properties": {}} if "properties" in stored else {}), **values}
    manager.update_volume(kind.collection, volume_uuid, values,
                          node_uuid=new_node if new_node != node_uuid else None,
                          expected=stored)
    with db.session() as session:
        return _document(request, kind, _find(session, kind, volume_uuid),
                         visible_fields(field_versions(kind), version))


def _route(kind: VolumeKind) -> None:
    """The routes of one kind (connectors or targets)."""
    base = f"/v1/volume/{kind.collection}"
    table = field_versions(kind)

    def list_all(request: Request, version: Version = Depends(api_version),
                 db: Database = Depends(database)) -> dict[str, Any]:
        return _list(kind, request, version, db, None)

    def list_of_node(ident: str, request: Request, version: Version = Depends(api_version),
                     db: Database = Depends(database)) -> dict[str, Any]:
        return _list(kind, request, version, db, ident)

    def show(ident: str, request: Request, version: Version = Depends(api_version),
             db: Database = Depends(database)) -> dict[str, Any]:
        require_version(version, VOLUME_VERSION)
        fields = collection.single_fields(request, version, table)
        with db.session() as session:
            return _document(request, kind, _find(session, kind, ident), fields, shown=True)

    def create(request: Request, body: Any = Body(...), version: Version = Depends(api_version),
               db: Database = Depends(database)) -> Response:
        return _create(kind, request, body, version, db)

    def update(ident: str, request: Request, patch: Any = Body(...),
               version: Version = Depends(api_version), db: Database = Depends(database),
               manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
        return _patch(kind, ident, request, patch, version, db, manager)

    def delete(ident: str, version: Version = Depends(api_version),
               db: Database = Depends(database),
               manager: ConductorAPI = Depends(conductor)) -> Response:
        require_version(version, VOLUME_VERSION)
        with db.session() as session:
            volume_uuid = _find(session, kind, ident).uuid
        manager.destroy_volume(kind.collection, volume_uuid)
        return Response(status_code=204)

    def malformed(ident: str, version: Version = Depends(api_version)) -> None:
        require_version(version, VOLUME_VERSION)
        raise Invalid(MALFORMED)

    endpoints: list[tuple[str, Callable[..., Any], str, int]] = [
        (base, list_all, "GET", 200), (base, create, "POST", 201),
        (f"{base}/{{ident}}", show, "GET", 200), (f"{base}/{{ident}}", update, "PATCH", 200),
        (f"{base}/{{ident}}", delete, "DELETE", 204),
        (f"/v1/nodes/{{ident}}/volume/{kind.collection}", list_of_node, "GET", 200),
        (f"/v1/nodes/{{ident}}/volume/{kind.collection}", malformed, "POST", 400),
    ]
    for method in ("GET", "PATCH", "DELETE"):
        endpoints.append((f"/v1/nodes/{{ident}}/volume/{kind.collection}/{{_volume}}",
                          malformed, method, 400))
    for path, endpoint, method, status in endpoints:
        name = f"{method.lower()}_{kind.collection}_{endpoint.__name__}"
        target: APIRouter = router
        target.add_api_route(path, endpoint, methods=[method], status_code=status, name=name)


for _kind in KINDS.values():
    _route(_kind)
