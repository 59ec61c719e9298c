"""/v1/inspection_rules, as Ironic serves them (API 1.96; 404 for a GET and 405 otherwise
below it): rules checked by ``inspection_rule_checks`` (Ironic's schema, phases, priorities,
operators and their arguments), found by UUID, listed by priority's and phase's fields. A
``sensitive`` rule shows no conditions or actions, and cannot become not sensitive again.
Inspection runs them (services/drivers/inspect/rules.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from services.api import collection, named_routes
from services.api.inspection_rule_checks import FIELDS, check
from services.api.patch import apply_patch
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import links, timestamp
from services.common import validation
from services.common.exceptions import Invalid, NotFound
from services.common.rule_models import InspectionRule

router = api_router(prefix="/v1/inspection_rules")

VERSION: Version = (1, 96)
FIELD_VERSIONS: dict[str, Version] = {
    name: VERSION for name in (*FIELDS, "created_at", "updated_at", "links")}
LIST_FIELDS = ("uuid", "priority", "phase", "description", "links")
WRITABLE = frozenset(FIELDS) - {"uuid"}
SORTABLE = {"uuid", "priority", "phase", "description", "sensitive", "created_at",
            "updated_at", "id"}


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


def _by_phase(request: Request, statement: Select[Any]) -> Select[Any]:
    if (phase := request.query_params.get("phase")) is not None:
        return statement.where(InspectionRule.phase == phase)
    return statement


def _patched(session: Session, rule: InspectionRule, patch: list[dict[str, Any]],
             version: Version) -> dict[str, Any]:
    unset = [op for op in patch if op["path"] == "/sensitive" and op["op"] != "remove"
             and not op.get("value")]
    if unset and rule.sensitive:
        raise Invalid("Couldn't apply patch. Reason: Inspection rules cannot have the "
                      "sensitive flag unset.")
    stored = {field: getattr(rule, field) for field in WRITABLE}
    return check(apply_patch(stored, patch), version)


def _writable(_version: Version) -> frozenset[str]:
    return WRITABLE


RESOURCE = named_routes.NamedResource(
    kind=KIND, version=VERSION, too_old="The API version does not allow inspection rules",
    find=find_rule, check=check, patched=_patched,
    not_writable="Cannot update the field {field!r} of an inspection rule.", writable=_writable,
    created_conflict=lambda values: f"An inspection rule with UUID {values.get('uuid')} "
                                    "already exists.",
    updated_conflict="An inspection rule with that UUID already exists.",
    list_filter=_by_phase)
named_routes.install(router, RESOURCE)
