"""/v1/deploy_templates, as Ironic serves them (API 1.55).

A deploy template is named by a trait (``CUSTOM_...`` or a standard one) and holds deploy
steps; a deploy of a node whose instance_info traits name it runs its steps
(services/conductor/step_plan.py). Templates have no conductor: the API writes them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.api import collection, named_routes
from services.api.patch import apply_patch
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import links, timestamp
from services.common import validation
from services.common.exceptions import Conflict, Invalid, NotFound
from services.common.models import DeployTemplate
from services.common.secrets import mask

router = api_router(prefix="/v1/deploy_templates")

VERSION: Version = (1, 55)
FIELD_VERSIONS: dict[str, Version] = {
    name: VERSION for name in ("uuid", "name", "steps", "extra", "created_at", "updated_at",
                               "links")}
LIST_FIELDS = ("uuid", "name", "links")
WRITABLE = frozenset({"name", "steps", "extra"})
CREATABLE = WRITABLE | {"uuid"}
SORTABLE = {"uuid", "name", "created_at", "updated_at", "id"}
STEP_FIELDS = ("interface", "step", "args", "priority")
SCHEMA_ERROR = "Schema error for deploy_template: "  # Ironic's jsonschema texts begin so


def document(request: Request, template: DeployTemplate, fields: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "uuid": template.uuid, "name": template.name,
        "steps": [{key: step.get(key) for key in STEP_FIELDS} | {"args": mask(step["args"])}
                  for step in template.steps],
        "extra": template.extra, "created_at": timestamp(template.created_at),
        "updated_at": timestamp(template.updated_at)}
    if "links" in fields:
        values["links"] = links(request, "deploy_templates", template.uuid)
    return {name: values[name] for name in fields if name in values}


KIND = collection.NamedCollection("deploy_templates", DeployTemplate, FIELD_VERSIONS, LIST_FIELDS,
                                  SORTABLE, ("steps", "extra"), document)


def find_template(session: Session, ident: str) -> DeployTemplate:
    where = (DeployTemplate.uuid == ident.lower() if validation.is_uuid(ident)
             else DeployTemplate.name == ident)
    template = session.scalar(select(DeployTemplate).where(where))
    if template is None:
        raise NotFound(f"Deploy template {ident} could not be found.")
    return template


def _invalid(reason: str) -> Invalid:
    return Invalid(f"Deploy template invalid: {reason}.")


def check_trait_name(name: Any, schema_error: str, what: str) -> None:
    """A deploy template's or runbook's name: a trait, refused with Ironic's schema text first
    (python-ironicclient's tests match "does not match")."""
    if (not isinstance(name, str) or len(name) > validation.FIELD_LIMITS["trait"]
            or validation.TRAIT_RE.fullmatch(name) is None):
        raise Invalid(f"{schema_error}{validation.shown(name)} does not match "
                      f"'^CUSTOM_[A-Z0-9_]+$'. {what} name must be a valid trait. A "
                      "valid trait must be no longer than 255 characters. Standard traits are "
                      "defined in the os_traits library. A custom trait must start with the "
                      "prefix CUSTOM_ and use the following characters: A-Z, 0-9 and _")


def check_no_duplicates(steps: list[dict[str, Any]], holder: str) -> None:
    """Each interface and step at most once (Ironic's duplicate_steps, its text)."""
    counts = Counter((step["interface"], step["step"]) for step in steps)
    duplicates = sorted(f"interface: {i}, step: {s}" for (i, s), n in counts.items() if n > 1)
    if duplicates:
        raise _invalid(f"Duplicate deploy steps. {holder} cannot have multiple deploy "
                       "steps with the same interface and step. Duplicates: "
                       + "; ".join(duplicates))


def _check(values: Any, _version: Version) -> dict[str, Any]:
    """A template's fields as Ironic validates them (its texts; the same at every version)."""
    if not isinstance(values, dict):
        raise Invalid("Invalid deploy template: expected a JSON object.")
    unknown = sorted(set(values) - CREATABLE)
    if unknown:
        raise Invalid(f"Unknown attribute(s) for a deploy template: {', '.join(unknown)}.")
    for mandatory in ("name", "steps"):
        if mandatory not in values:
            raise Invalid(f"Mandatory field missing: '{mandatory}'")
    name = values["name"]
    if name is None:
        raise _invalid("Deploy template name cannot be None")
    check_trait_name(name, SCHEMA_ERROR, "Deploy template")
    if values["steps"] == []:
        raise Invalid(f"{SCHEMA_ERROR}[] is too short")
    steps = validation.deploy_steps("steps", values["steps"])
    check_no_duplicates(steps, "A deploy template")
    clean = {"name": name, "steps": steps,
             "extra": validation.json_object("extra", values.get("extra") or {})}
    if values.get("uuid") is not None:
        clean["uuid"] = validation.uuid_value("uuid", values["uuid"])
    return clean


def _conflict(session: Session, values: dict[str, Any], own_id: int | None) -> None:
    for column, text in ((DeployTemplate.name, "name {}"), (DeployTemplate.uuid, "UUID {}")):
        key = column.key
        if key in values:
            found = session.scalar(select(DeployTemplate.id).where(column == values[key]))
            if found is not None and found != own_id:
                raise Conflict("A deploy template with "
                               f"{text.format(values[key])} already exists.")


def _patched(session: Session, template: DeployTemplate, patch: list[dict[str, Any]],
             version: Version) -> dict[str, Any]:
    stored = {"name": template.name, "steps": template.steps, "extra": template.extra}
    return _check({"extra": {}} | apply_patch(stored, patch), version)


def _writable(_version: Version) -> frozenset[str]:
    return WRITABLE


RESOURCE = named_routes.NamedResource(
    kind=KIND, version=VERSION, too_old="The API version does not allow deploy templates",
    find=find_template, check=_check, patched=_patched,
    not_writable="'/{field}' can not be updated on a deploy template.", writable=_writable,
    created_conflict=lambda values: f"A deploy template with name {values['name']} already "
                                    "exists.",
    updated_conflict="A deploy template with that name already exists.", conflict=_conflict)
named_routes.install(router, RESOURCE)
