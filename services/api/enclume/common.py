"""What every /enclume/v1 endpoint shares: the caller's identity, paging, the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import Select
from sqlalchemy.orm import Session

from services.api import collection
from services.api.versions import MAX_VERSION
from services.api.views import base_url
from services.classroom.access import require_classroom_user
from services.classroom.lead import LeadPolicy
from services.classroom.sessions import Limits
from services.common.identity import ANONYMOUS_ADMIN, Identity

PREFIX = "/enclume/v1"


def identity(request: Request) -> Identity:
    """The caller (set by the auth middleware; an admin when authentication is off), who must
    hold a classroom role (admin, operator, teacher)."""
    caller = any_user(request)
    require_classroom_user(caller)
    return caller


def any_user(request: Request) -> Identity:
    """The caller, whatever their roles (students too): endpoints that show a user only their
    own rows (their saved states) check the rest themselves."""
    caller: Identity = request.scope.get("state", {}).get("identity", ANONYMOUS_ADMIN)
    return caller


def now() -> datetime:
    return datetime.now(UTC)


def limits(request: Request) -> Limits:
    settings = request.app.state.settings
    return Limits(settings.classroom.ical_max_bytes, settings.classroom.ical_max_events,
                  timedelta(days=settings.classroom.occurrence_horizon_days),
                  timedelta(seconds=settings.classroom.occurrence_grace_s))


def lead_policy(request: Request) -> LeadPolicy:
    return LeadPolicy.of(request.app.state.settings)


def link(request: Request, path: str) -> list[dict[str, str]]:
    return [{"href": f"{base_url(request)}{PREFIX}/{path}", "rel": "self"}]


def listing(request: Request, session: Session, statement: Select[Any], model: Any,
            key: str, path: str, fields: list[str], sortable: set[str],
            render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """One page of ``statement`` rendered, with Ironic's paging parameters and next link."""
    query = collection.parse_list_query(request, version=MAX_VERSION, visible=fields,
                                        summary=tuple(fields), sortable=sortable,
                                        default_sort="id")
    marker = collection.marker_row(session, model.uuid, query.marker)
    rows = collection.page(session, statement, query, model.id,
                           getattr(model, query.sort_key), marker)
    documents = [{f: v for f, v in render(row).items() if f in query.fields} for row in rows]
    return {key: documents, **collection.next_link(request, path, rows, query,
                                                   lambda r: r.uuid, prefix=PREFIX)}
