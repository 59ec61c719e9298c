"""/v1/deploy_templates, as Ironic serves them (API 1.55).

A deploy template is named by a trait (``CUSTOM_...`` or a standard one) and holds deploy
steps; a deploy of a node whose instance_info traits name it runs its steps
(services/conductor/step_plan.py). Templates have no conductor: the API writes them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import collection
from services.api.deps import api_version, database, require_collection_version
from services.api.patch import apply_patch, validate_patch
from services.api.responses import rendered
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import links, timestamp, visible_fields
from services.common import validation
from services.common.db import Database
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


def _check_version(version: Version, method: str) -> None:
    """Before 1.55 the path does not exist: Ironic's 404 for a GET, 405 otherwise."""
    require_collection_version(version, VERSION, method,
                               "The API version does not allow deploy templates")


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


def _check(values: Any) -> dict[str, Any]:
    """A template's fields as Ironic validates them (its texts)."""
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


def _list(request: Request, version: Version, db: Database, detail: bool) -> dict[str, Any]:
    _check_version(version, "GET")
    with db.session() as session:
        return collection.list_named(request, version, session, KIND, detail)


@router.get("")
def list_templates(request: Request, version: Version = Depends(api_version),
                   db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, False)


@router.get("/detail")
def list_templates_detail(request: Request, version: Version = Depends(api_version),
                          db: Database = Depends(database)) -> dict[str, Any]:
    return _list(request, version, db, True)


@router.get("/{ident}")
def show_template(ident: str, request: Request, version: Version = Depends(api_version),
                  db: Database = Depends(database)) -> dict[str, Any]:
    _check_version(version, "GET")
    fields = collection.single_fields(request, version, FIELD_VERSIONS)
    with db.session() as session:
        return document(request, find_template(session, ident), fields)


@router.post("", status_code=201)
def create_template(request: Request, body: Any = Body(...),
                    version: Version = Depends(api_version),
                    db: Database = Depends(database)) -> Response:
    _check_version(version, "POST")
    values = _check(body)
    try:
        with db.session() as session:
            _conflict(session, values, None)
            template = DeployTemplate(**values)
            session.add(template)
            session.flush()
            shown = document(request, template, visible_fields(FIELD_VERSIONS, version))
            return rendered(shown, 201, {
                "Location": f"{request.base_url}v1/deploy_templates/{template.uuid}"})
    except IntegrityError:
        raise Conflict(f"A deploy template with name {values['name']} already "
                       "exists.") from None


@router.patch("/{ident}")
def update_template(ident: str, request: Request, patch: Any = Body(...),
                    version: Version = Depends(api_version),
                    db: Database = Depends(database)) -> dict[str, Any]:
    _check_version(version, "PATCH")
    for operation in validate_patch(patch):
        field = operation["path"].lstrip("/").split("/")[0]
        if field not in WRITABLE:
            raise Invalid(f"'/{field}' can not be updated on a deploy template.")
    try:
        with db.session() as session:
            template = find_template(session, ident)
            stored = {"name": template.name, "steps": template.steps, "extra": template.extra}
            values = _check({"extra": {}} | apply_patch(stored, patch))
            _conflict(session, values, template.id)
            for field, value in values.items():
                setattr(template, field, value)
            session.flush()
            return document(request, template, visible_fields(FIELD_VERSIONS, version))
    except IntegrityError:
        raise Conflict("A deploy template with that name already exists.") from None


@router.delete("/{ident}", status_code=204)
def delete_template(ident: str, version: Version = Depends(api_version),
                    db: Database = Depends(database)) -> Response:
    _check_version(version, "DELETE")
    with db.session() as session:
        session.delete(find_template(session, ident))
    return Response(status_code=204)
