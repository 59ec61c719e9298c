"""The routes of a top-level collection the API writes itself (deploy templates, runbooks,
inspection rules): list, detail, show, create, update by JSON patch, delete, each behind the
collection's microversion (Ironic's 404 for a GET, 405 otherwise below it). Each module
describes its resource in a ``NamedResource``; ``install`` adds the six routes to its router.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import collection
from services.api.deps import api_version, database, require_collection_version
from services.api.patch import validate_patch
from services.api.responses import rendered
from services.api.versions import Version
from services.api.views import visible_fields
from services.common.db import Database
from services.common.exceptions import Conflict, Invalid

Record = Any


@dataclass(frozen=True)
class NamedResource:
    """A collection, and its own rules: ``check``, ``patched`` and ``writable`` are each given
    the request's API version, also where the rules are the same at every version (one shape
    for every collection: no adapters)."""

    kind: collection.NamedCollection
    version: Version
    too_old: str  # the 404/405 text below ``version``
    find: Callable[[Session, str], Record]
    check: Callable[[Any, Version], dict[str, Any]]  # a created resource's fields, validated
    # The values a validated patch leaves (the resource's own rules on its fields).
    patched: Callable[[Session, Record, list[dict[str, Any]], Version], dict[str, Any]]
    not_writable: str  # "... {field} ..." refused in a patch
    writable: Callable[[Version], frozenset[str]]  # the fields a patch may change
    created_conflict: Callable[[dict[str, Any]], str]
    updated_conflict: str
    conflict: Callable[[Session, dict[str, Any], int | None], None] = lambda *_: None
    list_filter: Callable[[Request, Select[Any]], Select[Any]] = lambda _request, s: s
    # A created resource's values as the caller's policy leaves them (a runbook's owner).
    owned: Callable[[Request, dict[str, Any]], dict[str, Any]] = lambda _request, v: v
    # The caller's step-level rules on a created resource's values, or a patched one's when
    # the patch changes its ``steps`` (a runbook's: services/api/policy_steps.py).
    steps_authorized: Callable[[Request, dict[str, Any]], None] = lambda _request, _v: None

    def check_version(self, version: Version, method: str) -> None:
        require_collection_version(version, self.version, method, self.too_old)

    def document(self, request: Request, record: Record, fields: list[str]) -> dict[str, Any]:
        result: dict[str, Any] = self.kind.render(request, record, fields)
        return result


def install(router: APIRouter, resource: NamedResource) -> None:
    kind = resource.kind

    def listed(request: Request, version: Version, db: Database, detail: bool
               ) -> dict[str, Any]:
        resource.check_version(version, "GET")
        statement = resource.list_filter(request, select(kind.model))
        with db.session() as session:
            return collection.list_named(request, version, session, kind, detail, statement)

    @router.get("")
    def list_all(request: Request, version: Version = Depends(api_version),
                 db: Database = Depends(database)) -> dict[str, Any]:
        return listed(request, version, db, False)

    @router.get("/detail")
    def list_detail(request: Request, version: Version = Depends(api_version),
                    db: Database = Depends(database)) -> dict[str, Any]:
        return listed(request, version, db, True)

    @router.get("/{ident}")
    def show(ident: str, request: Request, version: Version = Depends(api_version),
             db: Database = Depends(database)) -> dict[str, Any]:
        resource.check_version(version, "GET")
        fields = collection.single_fields(request, version, kind.field_versions)
        with db.session() as session:
            return resource.document(request, resource.find(session, ident), fields)

    @router.post("", status_code=201)
    def create(request: Request, body: Any = Body(...),
               version: Version = Depends(api_version),
               db: Database = Depends(database)) -> Response:
        resource.check_version(version, "POST")
        values = resource.check(body, version)
        resource.steps_authorized(request, values)
        values = resource.owned(request, values)
        try:
            with db.session() as session:
                resource.conflict(session, values, None)
                record = kind.model(**values)
                session.add(record)
                session.flush()
                shown = resource.document(request, record,
                                          visible_fields(kind.field_versions, version))
                return rendered(shown, 201, {
                    "Location": f"{request.base_url}v1/{kind.member}/{record.uuid}"})
        except IntegrityError:
            raise Conflict(resource.created_conflict(values)) from None

    @router.patch("/{ident}")
    def update(ident: str, request: Request, patch: Any = Body(...),
               version: Version = Depends(api_version),
               db: Database = Depends(database)) -> dict[str, Any]:
        resource.check_version(version, "PATCH")
        for operation in validate_patch(patch):
            field = operation["path"].lstrip("/").split("/")[0]
            if field not in resource.writable(version):
                raise Invalid(resource.not_writable.format(field=field))
        try:
            with db.session() as session:
                record = resource.find(session, ident)
                values = resource.patched(session, record, patch, version)
                if any(operation["path"] == "/steps"
                       or operation["path"].startswith("/steps/") for operation in patch):
                    resource.steps_authorized(request, values)
                resource.conflict(session, values, record.id)
                for field, value in values.items():
                    setattr(record, field, value)
                session.flush()
                return resource.document(request, record,
                                         visible_fields(kind.field_versions, version))
        except IntegrityError:
            raise Conflict(resource.updated_conflict) from None

    @router.delete("/{ident}", status_code=204)
    def delete(ident: str, version: Version = Depends(api_version),
               db: Database = Depends(database)) -> Response:
        resource.check_version(version, "DELETE")
        with db.session() as session:
            session.delete(resource.find(session, ident))
        return Response(status_code=204)
