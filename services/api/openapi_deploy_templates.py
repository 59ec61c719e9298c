"""The OpenAPI operations and schemas of deploy templates (services/api/deploy_templates.py,
API 1.55), and the operations of every collection built as they are (``collection_operations``:
runbooks' and inspection rules' too, openapi_newer.py). ``openapi.py`` turns the operations
into its ``Operation`` entries and adds the schemas to the document's components, as it does
with openapi_volumes.py's."""

from __future__ import annotations

from typing import Any

from services.api import deploy_templates
from services.api.openapi_schemas import (
    LINKS,
    OBJECT,
    TRAIT,
    UUID,
    _collection,
    _document,
    _patch,
    nullable,
)
from services.common.validation import DEPLOY_STEP_SCHEMA

Schema = dict[str, Any]


def collection_operations(base: str, name: str, ident: str, *filters: str,
                          sort_key: str = "sort_key") -> dict[tuple[str, str], dict[str, Any]]:
    """The operations of a collection that services/api/named_routes.py serves (deploy
    templates, runbooks, inspection rules): below its version the path does not exist, a GET
    answers 404 and any other method 405 (Ironic's answers). ``name`` names its schemas,
    ``filters`` its list's own query parameters."""
    listing = ("fields", "limit", "marker", "sort_dir", "detail", sort_key, *filters)
    one = {"path_names": {"ident": ident}}
    return {
        ("get", base): {"status": 200, "response": f"{name}Collection", "query": listing,
                        "errors": (404,)},
        ("get", f"{base}/detail"): {"status": 200, "response": f"{name}Collection",
                                    "query": tuple(q for q in listing if q != "detail"),
                                    "errors": (404,)},
        ("post", base): {"status": 201, "response": name, "body": f"{name}Create",
                         "errors": (405, 409)},
        ("get", f"{base}/{{ident}}"): {"status": 200, "response": name, "query": ("fields",),
                                       "errors": (404,)} | one,
        ("patch", f"{base}/{{ident}}"): {"status": 200, "response": name,
                                         "body": f"{name}Patch", "errors": (404, 405, 409)}
        | one,
        ("delete", f"{base}/{{ident}}"): {"status": 204, "errors": (404, 405)} | one,
    }


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """The keyword arguments of each deploy template route's ``Operation`` (API 1.55)."""
    return collection_operations("/v1/deploy_templates", "DeployTemplate",
                                 "A deploy template's UUID or name.",
                                 sort_key="template_sort_key")


def schemas() -> dict[str, Schema]:
    steps = {"type": "array", "items": DEPLOY_STEP_SCHEMA}
    writable = ", ".join(sorted(deploy_templates.WRITABLE))
    return {
        "DeployTemplateCreate": {
            "type": "object", "required": ["name", "steps"], "additionalProperties": False,
            "properties": {"uuid": nullable(UUID), "extra": nullable(OBJECT), "name": TRAIT,
                           "steps": steps | {"minItems": 1}}},
        "DeployTemplatePatch": _patch(deploy_templates.WRITABLE,
                                      f"Writable deploy template fields: {writable}."),
        "DeployTemplate": _document(deploy_templates.FIELD_VERSIONS, {
            "uuid": UUID, "links": LINKS, "extra": OBJECT, "name": TRAIT, "steps": steps}),
        "DeployTemplateCollection": _collection("deploy_templates", "DeployTemplate"),
    }
