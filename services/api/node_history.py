"""/v1/nodes/{node}/history: what happened to a node (Ironic 1.78's shape).

Served from API 1.78 (404 below it), as Ironic. Entries are read-only; the conductor writes
them.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select

from services.api import collection
from services.api.deps import api_version, database, find_node
from services.api.routing import api_router
from services.api.versions import Version, format_version
from services.api.views import base_url, timestamp
from services.common.db import Database
from services.common.exceptions import Invalid, NotFound
from services.common.models import Node, NodeHistory
from services.common.secrets import mask
from services.common.validation import is_uuid

router = api_router(prefix="/v1/nodes/{ident}/history")

# Ironic's list shows these; ?detail=true and a single entry show them all.
SUMMARY_FIELDS = ("uuid", "created_at", "severity", "event")
DETAIL_FIELDS = ("uuid", "created_at", "user", "severity", "event", "event_type", "conductor")
NEWER_DETAIL_FIELDS: dict[str, Version] = {
    "project": (1, 113), "state": (1, 115), "target_provision_state": (1, 115),
    "duration_seconds": (1, 115)}


def detail_fields(version: Version) -> tuple[str, ...]:
    return DETAIL_FIELDS + tuple(name for name, since in NEWER_DETAIL_FIELDS.items()
                                 if since <= version)


VERSION: Version = (1, 78)


def _check_version(version: Version) -> None:
    if version < VERSION:
        raise NotFound(f"The node history needs API version {format_version(VERSION)}.")


def _document(request: Request, node: Node, entry: NodeHistory, fields: tuple[str, ...]
              ) -> dict[str, Any]:
    values: dict[str, Any] = {
        "uuid": entry.uuid,
        "created_at": timestamp(entry.created_at),
        "user": entry.user,
        "severity": entry.severity,
        "event": mask(entry.event),
        "event_type": entry.event_type,
        "conductor": entry.conductor,
        "project": entry.project,
        "state": entry.state,
        "target_provision_state": entry.target_provision_state,
        "duration_seconds": entry.duration_seconds,
    }
    document = {name: values[name] for name in fields}
    document["links"] = [{"href": f"{base_url(request)}/v1/nodes/{node.uuid}/history/"
                                  f"{entry.uuid}", "rel": "self"}]
    return document


@router.get("")
def list_history(ident: str, request: Request, version: Version = Depends(api_version),
                 db: Database = Depends(database)) -> dict[str, Any]:
    _check_version(version)
    if request.query_params.get("fields") is not None:
        raise Invalid("The fields parameter is not supported for node history.")
    query = collection.parse_list_query(request, version=version,
                                        visible=list(detail_fields(version)),
                                        summary=SUMMARY_FIELDS, sortable={"created_at"},
                                        default_sort="created_at")
    with db.session() as session:
        node = find_node(session, ident, version)
        marker = collection.marker_row(session, NodeHistory.uuid, query.marker,
                                       NodeHistory.node_id == node.id)
        statement = select(NodeHistory).where(NodeHistory.node_id == node.id)
        entries = collection.page(session, statement, query, NodeHistory.id,
                                  getattr(NodeHistory, query.sort_key), marker)
        fields = tuple(query.fields)
        documents = [_document(request, node, entry, fields) for entry in entries]
        path = f"nodes/{node.uuid}/history"
    return {"history": documents,
            **collection.next_link(request, path, entries, query, lambda e: e.uuid)}


@router.get("/{event_uuid}")
def show_history_event(ident: str, event_uuid: str, request: Request,
                       version: Version = Depends(api_version),
                       db: Database = Depends(database)) -> dict[str, Any]:
    _check_version(version)
    with db.session() as session:
        node = find_node(session, ident, version)
        entry = session.scalar(select(NodeHistory).where(
            NodeHistory.uuid == event_uuid.lower(), NodeHistory.node_id == node.id)
        ) if is_uuid(event_uuid) else None
        if entry is None:
            raise NotFound(f"Node history record {event_uuid} could not be found.")
        return _document(request, node, entry, detail_fields(version))
