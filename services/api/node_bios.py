"""/v1/nodes/{ident}/bios: the node's cached BIOS settings (API 1.40), as Ironic serves them.

Read-only: settings change through the ``bios.apply_configuration`` and ``bios.factory_reset``
clean steps, and the conductor caches what the bios interface reads
(services/conductor/component_caches.py). The attribute registry's fields (``?detail=True``, the
``fields`` selector, and in a single setting) are API 1.74's (406 for the selectors below).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select

from services.api.collection import parse_bool
from services.api.deps import api_version, database, find_node, require_version
from services.api.routing import api_router
from services.api.versions import Version, format_version
from services.api.views import base_url, timestamp
from services.common.db import Database
from services.common.exceptions import Invalid, NotFound
from services.common.hardware_types import BIOS_REGISTRY_FIELDS
from services.common.models import BiosSetting, Node

router = api_router(prefix="/v1/nodes/{ident}/bios")

BIOS_VERSION: Version = (1, 40)
REGISTRY_VERSION: Version = (1, 74)
SUMMARY_FIELDS = ("name", "value")
DETAIL_FIELDS = (*SUMMARY_FIELDS, *BIOS_REGISTRY_FIELDS)


def _document(request: Request, node: Node, setting: BiosSetting, fields: tuple[str, ...]
              ) -> dict[str, Any]:
    href = f"nodes/{node.uuid}/bios/{setting.name}"
    document: dict[str, Any] = {
        "created_at": timestamp(setting.created_at),
        "updated_at": timestamp(setting.updated_at),
        "links": [{"href": f"{base_url(request)}/v1/{href}", "rel": "self"},
                  {"href": f"{base_url(request)}/{href}", "rel": "bookmark"}],
    }
    document.update({name: getattr(setting, name) for name in fields})
    return document


def _list_fields(request: Request, version: Version) -> tuple[str, ...]:
    detail = parse_bool("detail", request.query_params.get("detail"))
    raw = request.query_params.get("fields")
    if (detail is not None or raw is not None) and version < REGISTRY_VERSION:
        raise Invalid(f"The detail and fields parameters of BIOS settings need API version "
                      f"{format_version(REGISTRY_VERSION)}.", code=406)
    if detail and raw is not None:
        raise Invalid("Can not specify ?detail=True and fields in the same request.")
    if raw is not None:
        fields = tuple(f.strip() for f in raw.split(",") if f.strip())
        unknown = [f for f in fields if f not in DETAIL_FIELDS]
        if unknown or not fields:
            raise Invalid(f"Field(s) \"{', '.join(unknown) or raw}\" are not valid")
        return fields
    return DETAIL_FIELDS if detail else SUMMARY_FIELDS


@router.get("")
def list_bios_settings(ident: str, request: Request, version: Version = Depends(api_version),
                       db: Database = Depends(database)) -> dict[str, Any]:
    require_version(version, BIOS_VERSION)
    fields = _list_fields(request, version)
    with db.session() as session:
        node = find_node(session, ident, version)
        settings = session.scalars(select(BiosSetting).where(BiosSetting.node_id == node.id)
                                   .order_by(BiosSetting.name))
        return {"bios": [_document(request, node, setting, fields) for setting in settings]}


@router.get("/{name}")
def show_bios_setting(ident: str, name: str, request: Request,
                      version: Version = Depends(api_version),
                      db: Database = Depends(database)) -> dict[str, Any]:
    require_version(version, BIOS_VERSION)
    fields = DETAIL_FIELDS if version >= REGISTRY_VERSION else SUMMARY_FIELDS
    with db.session() as session:
        node = find_node(session, ident, version)
        setting = session.scalar(select(BiosSetting).where(
            BiosSetting.node_id == node.id, BiosSetting.name == name))
        if setting is None:
            raise NotFound(f"Node {node.uuid} doesn't have a BIOS setting '{name}'")
        return {name: _document(request, node, setting, fields)}
