"""Collection rules shared by every list endpoint: fields, detail, limit, marker, sort, next.

Pagination is by key (the sort column, then id), so a page costs the same wherever it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from services.api.versions import Version
from services.api.views import base_url, visible_fields
from services.common import validation
from services.common.exceptions import Invalid, NotAcceptable

TRUE_WORDS = validation.TRUE_WORDS
FALSE_WORDS = validation.FALSE_WORDS


def parse_bool(name: str, raw: str | None) -> bool | None:
    return None if raw is None else validation.boolean(name, raw)


def require_filter_version(version: Version, since: Version, *given: str | None) -> None:
    """A filter newer than the requested version: Ironic's 406."""
    if version < since and any(value is not None for value in given):
        raise NotAcceptable("Request not acceptable. The minimal required API version should "
                            f"be {since[0]}.{since[1]}")


@dataclass
class ListQuery:
    limit: int
    marker: str | None
    sort_key: str
    sort_dir: str
    fields: list[str]
    detail: bool


def parse_list_query(
    request: Request,
    *,
    version: Version,
    visible: list[str],
    summary: tuple[str, ...],
    sortable: set[str],
    detail_path: bool = False,
    default_sort: str = "id",
    detail_since: Version = (1, 43),
) -> ListQuery:
    params = request.query_params
    max_limit: int = request.app.state.settings.api.max_page_size
    limit_raw = params.get("limit")
    if limit_raw is None:
        limit = max_limit
    else:
        limit = validation.integer("limit", limit_raw)
        if limit < 0:
            raise Invalid(f"Limit must be positive: {limit}.")
        limit = min(limit, max_limit) if limit else max_limit

    sort_dir = params.get("sort_dir", "asc").lower()
    if sort_dir not in ("asc", "desc"):
        raise Invalid(f"Invalid sort direction: {sort_dir}. Acceptable values are 'asc' or "
                      "'desc'")
    sort_key = params.get("sort_key", default_sort)
    if sort_key != default_sort and sort_key not in sortable:
        raise Invalid(f"The sort_key value {sort_key} is an invalid field for sorting")

    detail = detail_path
    detail_raw = params.get("detail")
    if detail_raw is not None:
        if version < detail_since:
            raise Invalid("The detail parameter needs API version "
                          f"{detail_since[0]}.{detail_since[1]} or newer.")
        if detail_path:
            raise Invalid("The detail parameter is not allowed on the /detail endpoint.")
        detail = bool(parse_bool("detail", detail_raw))

    requested = requested_fields(request, version, visible)
    if requested is not None:
        if detail:
            raise Invalid("Can not specify ?detail=True and fields in the same request.")
        fields = requested
    elif detail:
        fields = visible
    else:
        fields = [f for f in summary if f in visible]
    return ListQuery(limit, params.get("marker"), sort_key, sort_dir, fields, detail)


def requested_fields(request: Request, version: Version, visible: list[str]) -> list[str] | None:
    """The ``fields`` query parameter, checked against the fields visible at ``version``."""
    raw = request.query_params.get("fields")
    if raw is None:
        return None
    if version < (1, 8):
        raise Invalid("The fields parameter needs API version 1.8 or newer.")
    fields = [f.strip() for f in raw.split(",") if f.strip()]
    unknown = [f for f in fields if f not in visible]
    if unknown or not fields:
        raise Invalid(f"Field(s) \"{', '.join(unknown) or raw}\" are not valid")
    return fields


def single_fields(request: Request, version: Version,
                  table: dict[str, Version]) -> list[str]:
    """The fields a single-resource GET shows: those of ``fields`` (API 1.8), else every field
    of ``table`` visible at ``version``."""
    visible = visible_fields(table, version)
    return requested_fields(request, version, visible) or visible


def marker_row(session: Session, key: InstrumentedAttribute[Any], marker: str | None,
               *where: ColumnElement[bool]) -> Any | None:
    """The row a list query's ``marker`` names (by ``key``, within ``where``), None without one."""
    if not marker:
        return None
    row = session.scalar(select(key.class_).where(key == marker, *where))
    if row is None:
        raise Invalid(f"Marker {marker} could not be found.")
    return row


def page(
    session: Session,
    statement: Select[Any],
    query: ListQuery,
    id_column: InstrumentedAttribute[int],
    sort_column: InstrumentedAttribute[Any],
    marker_row: Any | None,
) -> list[Any]:
    """One page of ``statement``, ordered by (sort column, id), after the marker row."""
    descending = query.sort_dir == "desc"
    if marker_row is not None:
        value = getattr(marker_row, sort_column.key)
        marker_id = getattr(marker_row, id_column.key)
        if descending:
            after = (
                and_(sort_column.is_(None), id_column < marker_id)
                if value is None
                else or_(sort_column < value, and_(sort_column == value, id_column < marker_id),
                         sort_column.is_(None))
            )
        else:
            after = (
                or_(and_(sort_column.is_(None), id_column > marker_id),
                    sort_column.is_not(None))
                if value is None
                else or_(sort_column > value, and_(sort_column == value, id_column > marker_id))
            )
        statement = statement.where(after)
    if descending:
        order = (sort_column.desc().nulls_last(), id_column.desc())
    else:
        order = (sort_column.asc().nulls_first(), id_column.asc())
    if sort_column is id_column:
        order = order[1:]
    return list(session.scalars(statement.order_by(*order).limit(query.limit)))


def next_link(request: Request, path: str, items: list[Any], query: ListQuery,
              marker_of: Any, prefix: str = "/v1") -> dict[str, str]:
    """Ironic's ``next`` link: present when a page is full, carrying the other parameters.

    ``prefix`` is the API's path (Enclume's own API lists under /enclume/v1)."""
    if not items or len(items) < query.limit:
        return {}
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    if "limit" not in request.query_params:
        params.append(("limit", str(query.limit)))
    params.append(("marker", marker_of(items[-1])))
    return {"next": f"{base_url(request)}{prefix}/{path}?{urlencode(params)}"}


@dataclass(frozen=True)
class NamedCollection:
    """A top-level collection of rows with a ``uuid`` and an ``id`` (deploy templates,
    runbooks, inspection rules): what ``list_named`` needs to list a page of it."""

    member: str  # the list's key and path: "runbooks"
    model: Any  # the ORM class
    field_versions: dict[str, Version]
    summary: tuple[str, ...]
    sortable: set[str]
    unsortable: tuple[str, ...]  # fields Ironic refuses as sort keys
    render: Any  # (request, row, fields) -> document


def list_named(request: Request, version: Version, session: Session, kind: NamedCollection,
               detail: bool, statement: Select[Any] | None = None) -> dict[str, Any]:
    """A page of ``kind`` (``statement``: its filtered rows), with the next link."""
    sort_key = request.query_params.get("sort_key")
    if sort_key in kind.unsortable:
        raise Invalid(f"The sort_key value {sort_key} is an invalid field for sorting")
    query = parse_list_query(request, version=version,
                             visible=visible_fields(kind.field_versions, version),
                             summary=kind.summary, sortable=kind.sortable, detail_path=detail)
    marker = marker_row(session, kind.model.uuid, query.marker)
    rows = page(session, select(kind.model) if statement is None else statement, query,
                kind.model.id, getattr(kind.model, query.sort_key), marker)
    path = f"{kind.member}/detail" if detail else kind.member
    return {kind.member: [kind.render(request, row, query.fields) for row in rows],
            **next_link(request, path, rows, query, lambda row: row.uuid)}
