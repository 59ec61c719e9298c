"""/v1/runbooks, as Ironic serves them (API 1.92; 404 for a GET and 405 otherwise below it).

A runbook is named by a trait and holds clean steps with an ``order``; ``PUT
/v1/nodes/{id}/states/provision`` with ``{"target": "clean", "runbook": <uuid or name>}`` runs
them on a node whose traits hold the runbook's name (services/api/node_states.py). From 1.112
(Ironic's runbook traits): the node needs one of the runbook's ``traits`` instead
(runbook_traits.py sets them), a name is any unreserved URL text, and a runbook has a
``description``; a PATCH accepts those names at every version, as Ironic's. Its steps
are checked as a deploy template's are (``validation.runbook_steps``, duplicates refused).
Runbooks have no conductor: the API writes them. Who may read, change and use one is Ironic's
runbook policy (services/api/policy_gate.py): a project lists its own and the public ones.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from services.api import collection, named_routes, policy, policy_steps
from services.api.deploy_templates import check_no_duplicates, check_trait_name
from services.api.patch import apply_patch
from services.api.policy_gate import forced_owner, project_filter, require
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import links, timestamp
from services.common import validation
from services.common.exceptions import Conflict, Invalid, NotAcceptable, NotFound
from services.common.models import Node
from services.common.rule_models import Runbook
from services.common.secrets import mask

router = api_router(prefix="/v1/runbooks")

VERSION: Version = (1, 92)
TRAITS_VERSION: Version = (1, 112)
FIELD_VERSIONS: dict[str, Version] = {
    name: VERSION for name in ("uuid", "name", "steps", "disable_ramdisk", "extra", "public",
                               "owner", "created_at", "updated_at", "links")
} | {"description": TRAITS_VERSION, "traits": TRAITS_VERSION}
LIST_FIELDS = ("uuid", "name", "links")
WRITABLE = frozenset({"name", "steps", "disable_ramdisk", "extra", "public", "owner"})
CREATABLE = WRITABLE | {"uuid"}
NAME_RE = re.compile(r"[A-Za-z0-9\-._~]+")  # 1.112's names (Ironic's RUNBOOK_NAME_SCHEMA)
SORTABLE = {"uuid", "name", "created_at", "updated_at", "id"}
SCHEMA_ERROR = "Schema error for runbook: "


def writable(version: Version) -> frozenset[str]:
    return WRITABLE | {"description"} if version >= TRAITS_VERSION else WRITABLE


def check_version(version: Version, method: str) -> None:
    RESOURCE.check_version(version, method)


def steps_in_order(runbook: Runbook) -> list[dict[str, Any]]:
    """The runbook's steps as a clean request names them, in their ``order``."""
    return [{"interface": step["interface"], "step": step["step"], "args": step["args"]}
            for step in sorted(runbook.steps, key=lambda step: step["order"])]


def document(request: Request, runbook: Runbook, fields: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "uuid": runbook.uuid, "name": runbook.name,
        "steps": [{"interface": step["interface"], "step": step["step"],
                   "args": mask(step["args"]), "order": step["order"]}
                  for step in runbook.steps],
        "disable_ramdisk": runbook.disable_ramdisk, "extra": runbook.extra,
        "public": runbook.public, "owner": runbook.owner,
        "description": runbook.description, "traits": list(runbook.traits),
        "created_at": timestamp(runbook.created_at),
        "updated_at": timestamp(runbook.updated_at)}
    if "links" in fields:
        values["links"] = links(request, "runbooks", runbook.uuid)
    return {name: values[name] for name in fields if name in values}


KIND = collection.NamedCollection("runbooks", Runbook, FIELD_VERSIONS, LIST_FIELDS, SORTABLE,
                                  ("steps", "extra"), document)


def find_runbook(session: Session, ident: str) -> Runbook:
    where = (Runbook.uuid == ident.lower() if validation.is_uuid(ident)
             else Runbook.name == ident)
    runbook = session.scalar(select(Runbook).where(where))
    if runbook is None:
        raise NotFound(f"Runbook {ident} could not be found.")
    return runbook


def _check_name(name: Any, any_name: bool) -> None:
    if not any_name:
        check_trait_name(name, SCHEMA_ERROR, "Runbook")
    elif not isinstance(name, str) or not 1 <= len(name) <= validation.FIELD_LIMITS["name"] \
            or NAME_RE.fullmatch(name) is None:
        raise Invalid(f"{SCHEMA_ERROR}{validation.shown(name)} does not match "
                      f"'^[A-Za-z0-9\\-._~]+$'")


def _check(values: Any, version: Version, any_name: bool = False) -> dict[str, Any]:
    """A runbook's fields as Ironic's runbook schemas (RUNBOOK_SCHEMA, and from 1.112, or in a
    PATCH, the mutation schema: any unreserved name, a description) and duplicate_steps
    check them."""
    if not isinstance(values, dict):
        raise Invalid("Invalid runbook: expected a JSON object.")
    unknown = sorted(set(values) - writable(version) - {"uuid"})
    if unknown:
        raise Invalid(f"{SCHEMA_ERROR}Additional properties are not allowed "
                      f"({', '.join(repr(u) for u in unknown)} unexpected)")
    for mandatory in ("name", "steps"):
        if mandatory not in values:
            raise Invalid(f"{SCHEMA_ERROR}'{mandatory}' is a required property")
    _check_name(values["name"], any_name or version >= TRAITS_VERSION)
    if values["steps"] == []:
        raise Invalid(f"{SCHEMA_ERROR}[] is too short")
    steps = validation.runbook_steps("steps", values["steps"])
    check_no_duplicates(steps, "A template")
    clean: dict[str, Any] = {
        "name": values["name"], "steps": steps,
        "extra": validation.json_object("extra", values.get("extra") or {})}
    for flag in ("disable_ramdisk", "public"):
        value = values.get(flag)
        if value is not None and not isinstance(value, bool):
            raise Invalid(f"{SCHEMA_ERROR}{validation.shown(value)} is not of type "
                          "'boolean', 'null'")
        clean[flag] = bool(value)
    owner = values.get("owner")
    clean["owner"] = None if owner is None else validation.text("owner", owner)
    if "description" in values:
        description = values["description"]
        clean["description"] = None if description is None else validation.text(
            "description", description, limit_of="runbook_description")
    if values.get("uuid") is not None:
        clean["uuid"] = validation.uuid_value("uuid", values["uuid"])
    return clean


def _conflict(session: Session, values: dict[str, Any], own_id: int | None) -> None:
    for column, text in ((Runbook.name, "name {}"), (Runbook.uuid, "UUID {}")):
        if column.key in values:
            found = session.scalar(select(Runbook.id).where(column == values[column.key]))
            if found is not None and found != own_id:
                raise Conflict(f"A runbook with {text.format(values[column.key])} already "
                               "exists.")


def _patched(session: Session, runbook: Runbook, patch: list[dict[str, Any]],
             version: Version) -> dict[str, Any]:
    paths = {operation["path"].lstrip("/").split("/")[0]: operation for operation in patch}
    stored = {field: getattr(runbook, field) for field in writable(version)}
    if "owner" in paths and paths["owner"].get("value") is not None and (
            paths["public"].get("value") if "public" in paths else runbook.public):
        raise Invalid("Couldn't apply patch. Reason: There cannot be an owner for a "
                      "public runbook")
    if "public" in paths:
        stored["owner"] = None  # as Ironic: making it public (or not) drops the owner
    return _check(apply_patch(stored, patch), version, any_name=True)


def _project_share(request: Request, statement: Select[Any]) -> Select[Any]:
    """A project's list (Ironic's ``project`` filter of runbooks): its own and the public."""
    project = project_filter(request)
    if project is None:
        return statement
    return statement.where(or_(Runbook.owner == project, Runbook.public.is_(True)))


def _owned(request: Request, values: dict[str, Any]) -> dict[str, Any]:
    """A project's caller creates its project's runbook (policy_gate checked the body)."""
    owner = forced_owner(request)
    return values if owner is None else {**values, "owner": owner}


RESOURCE = named_routes.NamedResource(
    kind=KIND, version=VERSION, too_old="The API version does not allow runbooks",
    find=find_runbook, check=_check, patched=_patched,
    not_writable="Cannot update the field {field!r} of a runbook.", writable=writable,
    created_conflict=lambda values: f"A runbook with name {values['name']} already exists.",
    updated_conflict="A runbook with that name already exists.", conflict=_conflict,
    list_filter=_project_share, owned=_owned,
    steps_authorized=lambda request, values: policy_steps.authorize(request, values["steps"]))
named_routes.install(router, RESOURCE)


def _check_runbook_traits(runbook: Runbook, node_uuid: str, node_traits: list[str]) -> None:
    if not runbook.traits:
        raise Invalid(f"Runbook {runbook.uuid} has no traits configured. Please ask an "
                      "administrator to add traits to the runbook.")
    if not set(runbook.traits) & set(node_traits):
        raise Invalid(f"This runbook has not been approved for use on this node {node_uuid}. "
                      "The node does not have any of the runbook's traits "
                      f"{sorted(runbook.traits)}. Please ask an administrator to add a "
                      "matching trait to your node.")


def provision_options(request: Request, session: Session, node: Node, target: str,
                      options: dict[str, Any], version: Version) -> dict[str, Any]:
    """A provision request's ``runbook`` (1.92, 406 below) made its clean or service steps
    (by ``target``), as Ironic's _handle_runbook: the caller needs ``baremetal:runbook:use``
    on it, the node's traits must hold the runbook's name (from 1.112: one of the runbook's
    traits); the steps of a runbook with an owner that is not public pass the caller's
    step-level rules on the node."""
    if version < VERSION:
        raise NotAcceptable("Not Acceptable")
    runbook = find_runbook(session, validation.text("runbook", options.pop("runbook"),
                                                    limit_of="name"))
    require(request, "baremetal:runbook:use", policy.Target(policy.RUNBOOK, runbook.owner))
    node_uuid, node_traits = node.uuid, list(node.traits or [])
    if version >= TRAITS_VERSION:
        _check_runbook_traits(runbook, node_uuid, node_traits)
    elif runbook.name not in node_traits:
        raise Invalid(f"This runbook has not been approved for use on this node {node_uuid}. "
                      "Please ask an administrator to add it to your node traits.")
    if target not in ("clean", "service"):
        raise Invalid("\"runbooks\" is only valid when setting target provision state to any "
                      "of ['clean', 'service']")
    steps_field = f"{target}_steps"
    if options.get(steps_field):
        raise Invalid(f"Please provide either \"{steps_field}\" or a runbook, but not both.")
    steps = steps_in_order(runbook)
    if runbook.owner is not None and not runbook.public:
        policy_steps.authorize(request, steps, policy.Target(policy.NODE, node.owner,
                                                             node.lessee))
    return {**options, steps_field: steps, "disable_ramdisk": runbook.disable_ramdisk}
