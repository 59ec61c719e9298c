"""The OpenAPI operations and schemas of deploy templates (services/api/deploy_templates.py,
API 1.55). ``openapi.py`` turns the operations into its ``Operation`` entries and adds the
schemas to the document's components, as it does with openapi_volumes.py's."""

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
LIST = ("fields", "limit", "marker", "sort_dir", "detail", "template_sort_key")
IDENT = {"ident": "A deploy template's UUID or name."}
BASE = "/v1/deploy_templates"


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """The keyword arguments of each deploy template route's ``Operation``. Below 1.55 the
    path does not exist: a GET answers 404, any other method 405 (Ironic's answers)."""
    one = {"path_names": IDENT}
    return {
        ("get", BASE): {"status": 200, "response": "DeployTemplateCollection", "query": LIST,
                        "errors": (404,)},
        ("get", f"{BASE}/detail"): {"status": 200, "response": "DeployTemplateCollection",
                                    "query": tuple(q for q in LIST if q != "detail"),
                                    "errors": (404,)},
        ("post", BASE): {"status": 201, "response": "DeployTemplate",
                         "body": "DeployTemplateCreate", "errors": (405, 409)},
        ("get", f"{BASE}/{{ident}}"): {"status": 200, "response": "DeployTemplate",
                                       "query": ("fields",), "errors": (404,)} | one,
        ("patch", f"{BASE}/{{ident}}"): {"status": 200, "response": "DeployTemplate",
                                         "body": "DeployTemplatePatch",
                                         "errors": (404, 405, 409)} | one,
        ("delete", f"{BASE}/{{ident}}"): {"status": 204, "errors": (404, 405)} | one,
    }


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
