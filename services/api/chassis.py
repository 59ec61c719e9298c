"""/v1/chassis and /v1/chassis/{uuid}/nodes, as Ironic serves them (API 1.1).

A chassis is a description and ``extra``; nodes name theirs with ``chassis_uuid``. A chassis
that still holds nodes is not deleted. Chassis have no conductor: the API writes them.
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import collection
from services.api.deps import api_version, database
from services.api.nodes import list_nodes_of
from services.api.patch import apply_patch, validate_patch
from services.api.responses import rendered
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import (
    CHASSIS_FIELD_VERSIONS,
    CHASSIS_LIST_FIELDS,
    chassis_document,
    visible_fields,
)
from services.common import validation
from services.common.db import Database
from services.common.exceptions import Conflict, Invalid, NotFound
from services.common.models import Chassis, Node

router = api_router(prefix="/v1/chassis")

WRITABLE = frozenset({"description", "extra"})
CREATABLE = WRITABLE | {"uuid"}
SORTABLE = {"uuid", "description", "created_at", "updated_at", "id"}


def find_chassis(session: Session, ident: str) -> Chassis:
    """A chassis by UUID (chassis have no names); Ironic's texts."""
    if not validation.is_uuid(ident):
        raise Invalid(f"Expected a UUID but received {ident}.")
    chassis = session.scalar(select(Chassis).where(Chassis.uuid == ident.lower()))
    if chassis is None:
        raise NotFound(f"Chassis {ident} could not be found.")
    return chassis


def _check(values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise Invalid("Invalid chassis: expected a JSON object.")
    unknown = sorted(set(values) - CREATABLE)
    if unknown:
        raise Invalid(f"Unknown attribute(s) for chassis: {', '.join(unknown)}.")
    clean = dict(values)
    if clean.get("description") is not None:
        clean["description"] = validation.text("description", clean["description"],
                                               limit_of="chassis_description")
    clean["extra"] = validation.json_object("extra", clean.get("extra") or {})
    if clean.get("uuid") is None:
        clean.pop("uuid", None)
    else:
        clean["uuid"] = validation.uuid_value("uuid", clean["uuid"])
    return clean


def _list(request: Request, version: Version, db: Database, detail: bool,
          path: str) -> dict[str, Any]:
    visible = visible_fields(CHASSIS_FIELD_VERSIONS, version)
    query = collection.parse_list_query(request, version=version, visible=visible,
                                        summary=CHASSIS_LIST_FIELDS, sortable=SORTABLE,
                                        detail_path=detail)
    with db.session() as session:
        marker = collection.marker_row(session, Chassis.uuid, query.marker)
        rows = collection.page(session, select(Chassis), query, Chassis.id,
                               getattr(Chassis, query.sort_key), marker)
        documents = [chassis_document(request, row, query.fields) for row in rows]
    return {"chassis": documents,
            **collection.next_link(request, path, rows, query, lambda c: c.uuid)}


@router.get("")
def list_chassis(request: Request, version: Version = Depends(api_version),
                 db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, False, "chassis")


@router.get("/detail")
def list_chassis_detail(request: Request, version: Version = Depends(api_version),
                        db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, True, "chassis/detail")


@router.get("/{ident}/nodes")
def list_chassis_nodes(ident: str, request: Request, version: Version = Depends(api_version),
                       db: Database = Depends(database)) -> Response:
    with db.session() as session:
        chassis_id = find_chassis(session, ident).id
    return list_nodes_of(request, version, db, False, f"chassis/{ident}/nodes",
                         Node.chassis_id == chassis_id)


@router.get("/{ident}/nodes/detail")
def list_chassis_nodes_detail(ident: str, request: Request,
                              version: Version = Depends(api_version),
                              db: Database = Depends(database)) -> Response:
    with db.session() as session:
        chassis_id = find_chassis(session, ident).id
    return list_nodes_of(request, version, db, True, f"chassis/{ident}/nodes/detail",
                         Node.chassis_id == chassis_id)


@router.get("/{ident}")
def show_chassis(ident: str, request: Request, version: Version = Depends(api_version),
                 db: Database = Depends(database)) -> dict[str, Any]:
    fields = collection.single_fields(request, version, CHASSIS_FIELD_VERSIONS)
    with db.session() as session:
        return chassis_document(request, find_chassis(session, ident), fields)


@router.post("", status_code=201)
def create_chassis(request: Request, body: Any = Body(...),
                   version: Version = Depends(api_version),
                   db: Database = Depends(database)) -> Response:
    values = _check(body)
    try:
        with db.session() as session:
            chassis = Chassis(**values)
            session.add(chassis)
            session.flush()
            document = chassis_document(request, chassis,
                                        visible_fields(CHASSIS_FIELD_VERSIONS, version))
            return rendered(document, 201,
                            {"Location": f"{request.base_url}v1/chassis/{chassis.uuid}"})
    except IntegrityError:
        raise Conflict(f"A chassis with UUID {values.get('uuid')} already exists.") from None


@router.patch("/{ident}")
def update_chassis(ident: str, request: Request, patch: Any = Body(...),
                   version: Version = Depends(api_version),
                   db: Database = Depends(database)) -> dict[str, Any]:
    for operation in validate_patch(patch):
        field = operation["path"].lstrip("/").split("/")[0]
        if field not in WRITABLE:
            raise Invalid(f"'/{field}' can not be updated on a chassis.")
    with db.session() as session:
        chassis = find_chassis(session, ident)
        stored = {"description": chassis.description, "extra": chassis.extra}
        patched = {"description": None, "extra": {}} | apply_patch(stored, patch)
        for field, value in _check(patched).items():
            setattr(chassis, field, value)
        session.flush()
        return chassis_document(request, chassis, visible_fields(CHASSIS_FIELD_VERSIONS, version))


@router.delete("/{ident}", status_code=204)
def delete_chassis(ident: str, db: Database = Depends(database)) -> Response:
    with db.session() as session:
        chassis = find_chassis(session, ident)
        if session.scalar(select(Node.id).where(Node.chassis_id == chassis.id).limit(1)):
            raise Invalid("Cannot complete the requested action because chassis "
                          f"{chassis.uuid} contains nodes.")
        session.delete(chassis)
    return Response(status_code=204)
