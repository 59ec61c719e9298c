"""/v1/conductors (API 1.49): the registered conductors and whether they are alive."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select

from services.api import collection
from services.api.deps import api_version, database, members
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import (
    CONDUCTOR_FIELD_VERSIONS,
    CONDUCTOR_LIST_FIELDS,
    conductor_document,
    visible_fields,
)
from services.common.db import Database
from services.common.exceptions import NotFound
from services.common.membership import Membership
from services.common.models import Conductor

router = api_router(prefix="/v1/conductors")

SORTABLE = {"hostname", "conductor_group", "id"}


def _check_version(version: Version) -> None:
    if version < (1, 49):
        raise NotFound("The conductors resource needs API version 1.49 or newer.")


@router.get("")
def list_conductors(request: Request, version: Version = Depends(api_version),
                    db: Database = Depends(database),
                    membership: Membership = Depends(members)) -> dict[str, Any]:
    _check_version(version)
    visible = visible_fields(CONDUCTOR_FIELD_VERSIONS, version)
    query = collection.parse_list_query(request, version=version, visible=visible,
                                        summary=CONDUCTOR_LIST_FIELDS,
                                        sortable=SORTABLE)
    alive = set(membership.members())
    with db.session() as session:
        marker = collection.marker_row(session, Conductor.hostname, query.marker)
        rows = collection.page(session, select(Conductor), query, Conductor.id,
                               getattr(Conductor, query.sort_key), marker)
    documents = [conductor_document(request, c, c.hostname in alive, query.fields)
                 for c in rows]
    return {"conductors": documents, **collection.next_link(
        request, "conductors", rows, query, lambda c: c.hostname)}


@router.get("/{hostname}")
def show_conductor(hostname: str, request: Request, version: Version = Depends(api_version),
                   db: Database = Depends(database),
                   membership: Membership = Depends(members)) -> dict[str, Any]:
    _check_version(version)
    with db.session() as session:
        row = session.scalar(select(Conductor).where(Conductor.hostname == hostname))
    if row is None:
        raise NotFound(f"Conductor {hostname} could not be found.")
    alive = hostname in membership.members()
    return conductor_document(request, row, alive, collection.single_fields(
        request, version, CONDUCTOR_FIELD_VERSIONS))
