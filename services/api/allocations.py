"""/v1/allocations: reserve an available node for an instance, as a scheduler needs.

As Ironic's: created ``allocating`` and answered so; a conductor then decides it (``active``
with a node, or ``error`` with ``last_error``: services/conductor/allocations.py). With
``node`` (1.58) it is a backfill, checked and written at once by the node's conductor.
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import collection
from services.api.deps import api_version, conductor, database, find_node
from services.api.patch import apply_patch
from services.api.policy_gate import forced_owner, project_filter
from services.api.responses import rendered
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import (
    ALLOCATION_FIELD_VERSIONS,
    ALLOCATION_LIST_FIELDS,
    allocation_document,
    visible_fields,
)
from services.common import validation
from services.common.db import Database
from services.common.exceptions import (
    Invalid,
    NodeNotFound,
    NotFound,
    StaleUpdate,
    conflict_from_integrity,
)
from services.common.models import Allocation, Node, new_uuid, utcnow
from services.common.optimistic import retrying_stale
from services.common.validation import is_uuid
from services.conductor.interface import ConductorAPI

router = api_router()

CREATABLE = {"resource_class", "traits", "candidate_nodes", "name", "uuid", "extra", "owner",
             "node"}
SORTABLE = {"uuid", "name", "state", "resource_class", "created_at", "updated_at", "id"}


def _check_version(version: Version) -> None:
    if version < (1, 52):
        raise NotFound("Allocations need API version 1.52 or newer.")


def _find(session: Session, ident: str) -> Allocation:
    if is_uuid(ident):
        statement = select(Allocation).where(Allocation.uuid == ident.lower())
    else:
        statement = select(Allocation).where(Allocation.name == ident)
    allocation = session.scalar(statement)
    if allocation is None:
        raise NotFound(f"Allocation {ident} could not be found.")
    return allocation


CREATE_NAME_ERROR = "Cannot create allocation with invalid name '{name}'"  # Ironic's texts
UPDATE_NAME_ERROR = "Cannot update allocation with invalid name '{name}'"


def _resource_class(value: Any) -> str:
    if isinstance(value, str) and len(value) > validation.FIELD_LIMITS["resource_class"]:
        raise Invalid(f"Schema error for allocation: {validation.shown(value)} is too long. "
                      "Invalid value for resource_class: expected a string of at most "
                      f"{validation.FIELD_LIMITS['resource_class']} characters.")
    return validation.text("resource_class", value)


def _checked(body: dict[str, Any], name_error: str = CREATE_NAME_ERROR) -> dict[str, Any]:
    """The allocation's own fields of ``body``, checked; those it leaves out or nulls are
    left out (a UUID is then generated, as Ironic does)."""
    checks: dict[str, Any] = {
        "name": lambda v: validation.ironic_name(v, name_error),
        "uuid": lambda v: validation.uuid_value("uuid", v),
        "extra": lambda v: validation.json_object("extra", v),
        "traits": lambda v: validation.traits(v, validation.ALLOCATION_TRAIT_ERROR),
        "resource_class": _resource_class,
        "owner": lambda v: validation.text("owner", v),
    }
    return {field: check(body[field]) for field, check in checks.items()
            if body.get(field) is not None}


def _candidate_nodes(session: Session, idents: list[str], version: Version,
                     project: str | None) -> list[Node]:
    """The candidate nodes, in the order given; a 400 naming those that cannot exist or do
    not (Ironic's text). A project's caller names only nodes its project owns or leases: the
    others do not exist for it."""
    missing = [ident for ident in idents if not validation.is_node_ident(ident)]
    nodes: list[Node] = []
    if not missing:
        for ident in idents:
            try:
                node = find_node(session, ident, version)
            except NodeNotFound:
                missing.append(ident)
                continue
            if project and project not in (node.owner, node.lessee):
                missing.append(ident)
            else:
                nodes.append(node)
    if missing:
        raise Invalid("Nodes cannot be found: "
                      + ", ".join(validation.as_sent(ident) for ident in missing))
    return nodes


def _node_uuids(session: Session, allocations: list[Allocation]) -> dict[int, str]:
    ids = [a.node_id for a in allocations if a.node_id is not None]
    if not ids:
        return {}
    rows = session.execute(select(Node.id, Node.uuid).where(Node.id.in_(ids)))
    return {row.id: row.uuid for row in rows}


def _render(request: Request, session: Session, allocations: list[Allocation],
            fields: list[str]) -> list[dict[str, Any]]:
    uuids = _node_uuids(session, allocations)
    return [allocation_document(request, a, uuids.get(a.node_id or -1), fields)
            for a in allocations]


@router.post("/v1/allocations", status_code=201)
def create_allocation(request: Request, body: Any = Body(...),
                      version: Version = Depends(api_version),
                      db: Database = Depends(database),
                      manager: ConductorAPI = Depends(conductor)) -> Response:
    _check_version(version)
    if not isinstance(body, dict):
        raise Invalid("Invalid allocation: expected a JSON object.")
    unknown = set(body) - CREATABLE
    if ("owner" in body and version < (1, 60)) or ("node" in body and version < (1, 58)):
        unknown |= {k for k in ("owner", "node") if k in body}
    if unknown:
        raise Invalid(f"Unknown attribute(s) for allocation: {', '.join(sorted(unknown))}.")
    fields = _checked(body)
    candidates = body.get("candidate_nodes")
    if candidates is not None and not isinstance(candidates, list):
        raise Invalid("Invalid candidate_nodes: expected a list of node names or UUIDs.")
    node_ident = body.get("node")
    if node_ident is not None:
        node_ident = validation.node_ident("node", node_ident)
    elif not fields.get("resource_class"):
        raise Invalid("The resource_class field is mandatory when not backfilling")
    values: dict[str, Any] = {"name": fields.get("name"), "uuid": fields.get("uuid")}
    try:
        with db.session() as session:
            node = None
            if node_ident:
                try:
                    node = find_node(session, node_ident, version)
                except NodeNotFound as exc:
                    raise Invalid(exc.message) from None
            allocation = Allocation(
                resource_class=fields.get("resource_class") or (node and node.resource_class),
                traits=fields.get("traits", []), name=fields.get("name"),
                extra=fields.get("extra", {}),
                owner=forced_owner(request) or fields.get("owner"),
                candidate_nodes=[n.uuid for n in _candidate_nodes(
                    session, candidates or [], version, project_filter(request))],
                uuid=fields.get("uuid") or (node and node.instance_uuid) or new_uuid(),
            )
            values["uuid"] = allocation_uuid = allocation.uuid
            session.add(allocation)
            session.flush()
            node_uuid = node.uuid if node else None
            fields = visible_fields(ALLOCATION_FIELD_VERSIONS, version)
            document = _render(request, session, [allocation], fields)[0]
    except IntegrityError as exc:
        raise conflict_from_integrity(exc, values) from None
    # A conductor decides it (answered as it was created, "allocating"); a backfill at once.
    if node_uuid is None:
        manager.process_allocation(allocation_uuid)
    else:
        manager.backfill_allocation(allocation_uuid, node_uuid)
        with db.session() as session:
            document = _render(request, session, [_find(session, allocation_uuid)], fields)[0]
    location = f"{request.base_url}v1/allocations/{allocation_uuid}"
    return rendered(document, 201, {"Location": location})


@router.get("/v1/allocations")
def list_allocations(request: Request, version: Version = Depends(api_version),
                     db: Database = Depends(database)) -> dict[str, Any]:
    _check_version(version)
    visible = visible_fields(ALLOCATION_FIELD_VERSIONS, version)
    query = collection.parse_list_query(request, version=version, visible=visible,
                                        summary=ALLOCATION_LIST_FIELDS, sortable=SORTABLE)
    params = request.query_params
    with db.session() as session:
        statement = select(Allocation)
        if params.get("node"):
            statement = statement.where(
                Allocation.node_id == find_node(session, params["node"], version).id)
        for name in ("resource_class", "state", "owner"):
            if params.get(name):
                statement = statement.where(getattr(Allocation, name) == params[name])
        if project := project_filter(request):  # a project's caller sees its allocations
            statement = statement.where(Allocation.owner == project)
        marker = collection.marker_row(session, Allocation.uuid, query.marker)
        allocations = collection.page(session, statement, query, Allocation.id,
                                      getattr(Allocation, query.sort_key), marker)
        documents = _render(request, session, allocations, query.fields)
    return {"allocations": documents, **collection.next_link(
        request, "allocations", allocations, query, lambda a: a.uuid)}


@router.get("/v1/allocations/{ident}")
def show_allocation(ident: str, request: Request, version: Version = Depends(api_version),
                    db: Database = Depends(database)) -> dict[str, Any]:
    _check_version(version)
    with db.session() as session:
        allocation = _find(session, ident)
        fields = collection.single_fields(request, version, ALLOCATION_FIELD_VERSIONS)
        return _render(request, session, [allocation], fields)[0]


@router.get("/v1/nodes/{ident}/allocation")
def show_node_allocation(ident: str, request: Request, version: Version = Depends(api_version),
                         db: Database = Depends(database)) -> dict[str, Any]:
    _check_version(version)
    with db.session() as session:
        node = find_node(session, ident, version)
        allocation = session.get(Allocation, node.allocation_id) if node.allocation_id else None
        if allocation is not None and (project := project_filter(request)) and (
                allocation.owner != project):
            allocation = None  # another project's: not in this caller's share
        if allocation is None:
            raise NotFound(f"Node {node.uuid} has no allocation.")
        fields = collection.single_fields(request, version, ALLOCATION_FIELD_VERSIONS)
        return _render(request, session, [allocation], fields)[0]


@router.patch("/v1/allocations/{ident}")
def update_allocation(ident: str, request: Request, patch: Any = Body(...),
                      version: Version = Depends(api_version),
                      db: Database = Depends(database)) -> Response:
    if version < (1, 57):
        raise Invalid("Updating allocations needs API version 1.57 or newer.", code=405)

    def attempt() -> Response:  # again on the fresh allocation while another writer won
        with db.session() as session:
            allocation = _find(session, ident)
            patched = apply_patch({"name": allocation.name, "extra": allocation.extra}, patch)
            if set(patched) - {"name", "extra"}:
                raise Invalid("Only name and extra of an allocation can be updated.")
            checked = _checked(patched, UPDATE_NAME_ERROR)
            name, extra = checked.get("name"), checked.get("extra", {})
            try:  # compare-and-set on the version read
                written = session.execute(
                    update(Allocation).where(Allocation.id == allocation.id,
                                             Allocation.version == allocation.version)
                    .values(name=name, extra=extra, version=Allocation.version + 1,
                            updated_at=utcnow()))
            except IntegrityError as exc:
                raise conflict_from_integrity(exc, {"name": name}) from None
            if written.rowcount != 1:
                raise StaleUpdate.of(f"Allocation {allocation.uuid}")
            session.refresh(allocation)
            fields = visible_fields(ALLOCATION_FIELD_VERSIONS, version)
            return rendered(_render(request, session, [allocation], fields)[0])

    return retrying_stale(attempt)


@router.delete("/v1/allocations/{ident}", status_code=204)
def delete_allocation(ident: str, version: Version = Depends(api_version),
                      db: Database = Depends(database),
                      manager: ConductorAPI = Depends(conductor)) -> Response:
    _check_version(version)
    with db.session() as session:
        allocation_uuid = _find(session, ident).uuid
    manager.destroy_allocation(allocation_uuid)
    return Response(status_code=204)
