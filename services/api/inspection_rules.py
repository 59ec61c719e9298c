"""/v1/inspection_rules, as Ironic serves them (API 1.96; 404 for a GET and 405 otherwise
below it): rules checked by ``inspection_rule_checks`` (Ironic's schema, phases, priorities,
operators and their arguments), found by UUID, listed by priority's and phase's fields. A
``sensitive`` rule shows no conditions or actions, and cannot become not sensitive again.
Inspection runs them (services/drivers/inspect/rules.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import collection
from services.api.deps import api_version, database, require_collection_version
from services.api.inspection_rule_checks import FIELDS, check
from services.api.patch import apply_patch, validate_patch
from services.api.responses import rendered
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import links, timestamp, visible_fields
from services.common import validation
from services.common.db import Database
from services.common.exceptions import Conflict, Invalid, NotFound
from services.common.rule_models import InspectionRule

router = api_router(prefix="/v1/inspection_rules")

VERSION: Version = (1, 96)
FIELD_VERSIONS: dict[str, Version] = {
    name: VERSION for name in (*FIELDS, "created_at", "updated_at", "links")}
LIST_FIELDS = ("uuid", "priority", "phase", "description", "links")
WRITABLE = frozenset(FIELDS) - {"uuid"}
SORTABLE = {"uuid", "priority", "phase", "description", "sensitive", "created_at",
            "updated_at", "id"}


def _check_version(version: Version, method: str) -> None:
    require_collection_version(version, VERSION, method,
                               "The API version does not allow inspection rules")


def document(request: Request, rule: InspectionRule, fields: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "uuid": rule.uuid, "description": rule.description, "priority": rule.priority,
        "sensitive": rule.sensitive, "phase": rule.phase,
        # A sensitive rule's conditions and actions (credentials, say) are never shown.
        "conditions": None if rule.sensitive else rule.conditions,
        "actions": None if rule.sensitive else rule.actions,
        "created_at": timestamp(rule.created_at), "updated_at": timestamp(rule.updated_at)}
    if "links" in fields:
        values["links"] = links(request, "inspection_rules", rule.uuid)
    return {name: values[name] for name in fields if name in values}


KIND = collection.NamedCollection("inspection_rules", InspectionRule, FIELD_VERSIONS,
                                  LIST_FIELDS, SORTABLE, ("actions", "conditions"), document)


def find_rule(session: Session, ident: str) -> InspectionRule:
    if not validation.is_uuid(ident):
        raise Invalid(f"Expected a UUID but received {validation.as_sent(ident)}.")
    rule = session.scalar(select(InspectionRule).where(InspectionRule.uuid == ident.lower()))
    if rule is None:
        raise NotFound(f"Inspection rule {ident} could not be found.")
    return rule


def _list(request: Request, version: Version, db: Database, detail: bool) -> dict[str, Any]:
    _check_version(version, "GET")
    statement = select(InspectionRule)
    if (phase := request.query_params.get("phase")) is not None:
        statement = statement.where(InspectionRule.phase == phase)
    with db.session() as session:
        return collection.list_named(request, version, session, KIND, detail, statement)


@router.get("")
def list_rules(request: Request, version: Version = Depends(api_version),
               db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, False)


@router.get("/detail")
def list_rules_detail(request: Request, version: Version = Depends(api_version),
                      db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, True)


@router.get("/{ident}")
def show_rule(ident: str, request: Request, version: Version = Depends(api_version),
              db: Database = Depends(database)) -> dict[str, Any]:
    _check_version(version, "GET")
    fields = collection.single_fields(request, version, FIELD_VERSIONS)
    with db.session() as session:
        return document(request, find_rule(session, ident), fields)


@router.post("", status_code=201)
def create_rule(request: Request, body: Any = Body(...),
                version: Version = Depends(api_version),
                db: Database = Depends(database)) -> Response:
    _check_version(version, "POST")
    values = check(body)
    try:
        with db.session() as session:
            rule = InspectionRule(**values)
            session.add(rule)
            session.flush()
            shown = document(request, rule, visible_fields(FIELD_VERSIONS, version))
            return rendered(shown, 201, {
                "Location": f"{request.base_url}v1/inspection_rules/{rule.uuid}"})
    except IntegrityError:
        raise Conflict(f"An inspection rule with UUID {values.get('uuid')} already "
                       "exists.") from None


@router.patch("/{ident}")
def update_rule(ident: str, request: Request, patch: Any = Body(...),
                version: Version = Depends(api_version),
                db: Database = Depends(database)) -> dict[str, Any]:
    _check_version(version, "PATCH")
    for operation in validate_patch(patch):
        field = operation["path"].lstrip("/").split("/")[0]
        if field not in WRITABLE:
            raise Invalid(f"Cannot update the field {field!r} of an inspection rule.")
    with db.session() as session:
        rule = find_rule(session, ident)
        unset = [op for op in patch if op["path"] == "/sensitive" and op["op"] != "remove"
                 and not op.get("value")]
        if unset and rule.sensitive:
            raise Invalid("Couldn't apply patch. Reason: Inspection rules cannot have the "
                          "sensitive flag unset.")
        stored = {field: getattr(rule, field) for field in WRITABLE}
        values = check(apply_patch(stored, patch))
        for field, value in values.items():
            setattr(rule, field, value)
        session.flush()
        return document(request, rule, visible_fields(FIELD_VERSIONS, version))


@router.delete("/{ident}", status_code=204)
def delete_rule(ident: str, version: Version = Depends(api_version),
                db: Database = Depends(database)) -> Response:
    _check_version(version, "DELETE")
    with db.session() as session:
        session.delete(find_rule(session, ident))
    return Response(status_code=204)
