"""The OpenAPI operations and schemas of volume connectors and targets (services/api/volumes.py).

``openapi.py`` turns the operations into its ``Operation`` entries and adds the schemas to the
document's components; kept here so that one table describes both kinds.
"""

from __future__ import annotations

from typing import Any

from services.api.openapi_schemas import (
    OBJECT,
    UUID,
    _collection,
    _document,
    _patch,
    field_text,
    nullable,
)
from services.api.volumes import LIMITS, REQUIRED, SCHEMA_NAMES, field_versions
from services.common.volumes import KINDS, VolumeKind

Schema = dict[str, Any]
LIST = ("fields", "limit", "marker", "sort_key", "sort_dir", "detail")
CONDUCTOR = (409, 503)
MALFORMED = {"summary": "Not served under a node: 400 Malformed request URI.",
             "status": 400, "errors": (404,)}


def _names(kind: VolumeKind) -> tuple[str, str]:
    """The component names of one kind: VolumeConnector, VolumeConnectorCollection..."""
    title = f"Volume{SCHEMA_NAMES[kind.collection].capitalize()}"
    return title, f"{title}Collection"


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """The keyword arguments of each volume route's ``Operation``."""
    node = {"ident": "A node's UUID or name (API 1.5)."}
    table: dict[tuple[str, str], dict[str, Any]] = {
        ("get", "/v1/volume"): {"status": 200, "errors": (404,)},
        ("get", "/v1/volume/"): {"status": 200, "errors": (404,)},
        ("get", "/v1/nodes/{ident}/volume"): {"status": 200, "errors": (404,),
                                              "path_names": node},
        ("get", "/v1/nodes/{ident}/volume/"): {"status": 200, "errors": (404,),
                                               "path_names": node},
    }
    for kind in KINDS.values():
        item, items = _names(kind)
        base = f"/v1/volume/{kind.collection}"
        one = {"ident": f"A {kind.label}'s UUID."}
        nested = f"/v1/nodes/{{ident}}/volume/{kind.collection}"
        table |= {
            ("get", base): {"status": 200, "response": items, "query": (*LIST, "node"),
                            "errors": (404,)},
            ("post", base): {"status": 201, "response": item, "body": f"{item}Create",
                             "errors": (404, 409)},
            ("get", f"{base}/{{ident}}"): {"status": 200, "response": item,
                                           "query": ("fields",), "errors": (404,),
                                           "path_names": one},
            ("patch", f"{base}/{{ident}}"): {"status": 200, "response": item,
                                             "body": f"{item}Patch",
                                             "errors": (404, *CONDUCTOR), "path_names": one},
            ("delete", f"{base}/{{ident}}"): {"status": 204, "errors": (404, *CONDUCTOR),
                                              "path_names": one},
            ("get", nested): {"status": 200, "response": items, "query": LIST,
                              "errors": (404,), "path_names": node},
            ("post", nested): MALFORMED | {"path_names": node},
        }
        for method in ("get", "patch", "delete"):
            table[(method, f"{nested}/{{_volume}}")] = MALFORMED | {
                "path_names": node | {"_volume": one["ident"]}}
    return table


def _create(kind: VolumeKind) -> Schema:
    properties: Schema = {"node_uuid": UUID, "uuid": nullable(UUID), "extra": nullable(OBJECT)}
    for name in kind.own_fields:
        if name == "properties":
            properties[name] = nullable(OBJECT)
        elif name == "boot_index":
            properties[name] = {"type": "integer"}
        else:
            properties[name] = field_text(name, LIMITS[name])
    return {"type": "object", "required": list(REQUIRED[kind.collection]),
            "additionalProperties": False, "properties": properties}


def schemas() -> dict[str, Schema]:
    """The components of both kinds."""
    components: dict[str, Schema] = {}
    for kind in KINDS.values():
        item, items = _names(kind)
        writable = ("extra", "node_uuid", *kind.own_fields)
        components |= {
            item: _document(field_versions(kind), {"uuid": UUID, "node_uuid": UUID,
                                                   "extra": OBJECT}),
            items: _collection(kind.collection, item),
            f"{item}Create": _create(kind),
            f"{item}Patch": _patch(writable, "Writable fields: "
                                   + ", ".join(sorted(writable)) + "."),
        }
    return components
