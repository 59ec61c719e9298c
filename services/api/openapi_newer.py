"""The OpenAPI operations and schemas of what API 1.74 and later add (services/api/shards.py,
node_children.py, node_boot_mode.py). ``openapi.py`` turns the operations into its
``Operation`` entries, as it does with openapi_volumes.py's; each documents its 404 below its
microversion."""

from __future__ import annotations

from typing import Any

from services.api import (
    inspection_rule_checks,
    inspection_rules,
    node_boot_mode,
    node_vmedia,
    runbooks,
    versions,
)
from services.api.openapi_deploy_templates import collection_operations
from services.api.openapi_schemas import (
    BOOLEAN,
    LINKS,
    OBJECT,
    TRAIT,
    UUID,
    _collection,
    _document,
    _patch,
    nullable,
)
from services.common.validation import RUNBOOK_STEP_SCHEMA

Schema = dict[str, Any]
IDENT = {"ident": "A node's UUID or name (API 1.5)."}
CONDUCTOR = (409, 503)


def _runbook_traits() -> dict[tuple[str, str], dict[str, Any]]:
    """/v1/runbooks/{ident}/traits (API 1.112; 404 below, runbooks' 404/405 below 1.92)."""
    base = "/v1/runbooks/{ident}/traits"
    ident = {"ident": "A runbook's UUID or name."}
    trait = ident | {"trait": "A standard trait or CUSTOM_..."}
    summary = " (API 1.112; 404 below)"
    return {
        ("get", base): {"status": 200, "response": "Traits", "errors": (404,),
                        "path_names": ident, "summary": "The runbook's traits" + summary},
        ("put", base): {"status": 204, "body": "Traits", "errors": (404, 405),
                        "path_names": ident, "summary": "Replace its traits" + summary},
        ("delete", base): {"status": 204, "errors": (404, 405), "path_names": ident,
                           "summary": "Remove all its traits" + summary},
        ("put", base + "/{trait}"): {"status": 204, "errors": (404, 405), "path_names": trait,
                                     "summary": "Add a trait, with no body" + summary},
        ("delete", base + "/{trait}"): {"status": 204, "errors": (404, 405),
                                        "path_names": trait,
                                        "summary": "Remove a trait" + summary},
    }


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """The keyword arguments of each route's ``Operation`` (runbooks and inspection rules
    once ``MAX_VERSION`` reaches theirs, as services/api/app.py includes their routes)."""
    built: dict[tuple[str, str], dict[str, Any]] = {}
    if runbooks.VERSION <= versions.MAX_VERSION:
        built |= collection_operations("/v1/runbooks", "Runbook",
                                       "A runbook's UUID or name.") | _runbook_traits()
    if inspection_rules.VERSION <= versions.MAX_VERSION:
        built |= collection_operations("/v1/inspection_rules", "InspectionRule",
                                       "An inspection rule's UUID.", "phase")
    return built | {
        ("get", "/v1/shards"): {"status": 200, "response": "ShardCollection", "errors": (404,),
                                "summary": "Nodes per shard (API 1.82; 404 below)"},
        ("get", "/v1/nodes/{ident}/children"): {
            "status": 200, "response": "NodeChildren", "errors": (404,), "path_names": IDENT,
            "summary": "The node's child nodes (API 1.83; 404 below)"},
        ("put", "/v1/nodes/{ident}/states/boot_mode"): {
            "status": 202, "body": "BootModeChange", "errors": (404, *CONDUCTOR),
            "path_names": IDENT, "summary": "Change the boot mode (API 1.76; 404 below)"},
        ("put", "/v1/nodes/{ident}/states/secure_boot"): {
            "status": 202, "body": "SecureBootChange", "errors": (404, *CONDUCTOR),
            "path_names": IDENT, "summary": "Turn UEFI secure boot on or off (API 1.76; 404 "
                                            "below)"},
        ("get", "/v1/nodes/{ident}/vmedia"): {
            "status": 200, "response": "VmediaList", "errors": (404, *CONDUCTOR, 500),
            "path_names": IDENT, "summary": "The BMC's virtual media (API 1.93; 404 below)"},
        ("post", "/v1/nodes/{ident}/vmedia"): {
            "status": 204, "body": "VmediaAttach", "errors": (404, *CONDUCTOR),
            "path_names": IDENT, "summary": "Attach virtual media (API 1.89; 404 below)"},
        ("delete", "/v1/nodes/{ident}/vmedia"): {
            "status": 204, "query": ("device_types",), "errors": (404, *CONDUCTOR),
            "path_names": IDENT, "summary": "Detach virtual media (API 1.89; 404 below)"},
    }


def schemas() -> dict[str, Schema]:
    steps = {"type": "array", "items": RUNBOOK_STEP_SCHEMA}
    rule = inspection_rule_checks.schema()
    writable = runbooks.writable(versions.MAX_VERSION)
    name: Schema = TRAIT
    more: dict[str, Schema] = {}
    if versions.MAX_VERSION >= runbooks.TRAITS_VERSION:  # any unreserved name, a description
        name = {"type": "string", "minLength": 1, "maxLength": 255,
                "pattern": "^[A-Za-z0-9\\-._~]+$"}
        more = {"description": nullable({"type": "string", "maxLength": 255})}
    return {
        "RunbookCreate": {
            "type": "object", "required": ["name", "steps"], "additionalProperties": False,
            "properties": {"uuid": nullable(UUID), "extra": nullable(OBJECT), "name": name,
                           "steps": steps | {"minItems": 1},
                           "disable_ramdisk": nullable({"type": "boolean"}),
                           "public": nullable({"type": "boolean"}),
                           "owner": nullable({"type": "string", "maxLength": 255}), **more}},
        "RunbookPatch": _patch(writable, "Writable runbook fields: "
                               + ", ".join(sorted(writable)) + "."),
        "Runbook": _document(runbooks.FIELD_VERSIONS, {
            "uuid": UUID, "links": LINKS, "extra": OBJECT, "name": name, "steps": steps,
            "traits": {"type": "array", "items": TRAIT}}),
        "RunbookCollection": _collection("runbooks", "Runbook"),
        "InspectionRuleCreate": rule,
        "InspectionRulePatch": _patch(inspection_rules.WRITABLE, "Writable inspection rule "
                                      "fields: " + ", ".join(sorted(inspection_rules.WRITABLE))
                                      + "."),
        "InspectionRule": _document(inspection_rules.FIELD_VERSIONS, {
            "uuid": UUID, "links": LINKS, "priority": {"type": "integer"},
            "conditions": nullable({"type": "array"}), "actions": nullable({"type": "array"})}),
        "InspectionRuleCollection": _collection("inspection_rules", "InspectionRule"),
        "ShardCollection": {
            "type": "object", "required": ["shards"],
            "properties": {"shards": {"type": "array", "items": {
                "type": "object", "required": ["name", "count"],
                "properties": {"name": {"type": "string",
                                        "description": "'None' for the nodes without one."},
                               "count": {"type": "integer", "minimum": 1}}}}}},
        "NodeChildren": {
            "type": "object", "required": ["children", "links"],
            "properties": {"children": {"type": "array", "items": UUID},
                           "links": {"type": "object"}}},
        "BootModeChange": {
            "type": "object", "required": ["target"], "additionalProperties": False,
            "properties": {"target": {"type": "string",
                                      "enum": list(node_boot_mode.BOOT_MODES)}}},
        "SecureBootChange": {
            "type": "object", "required": ["target"], "additionalProperties": False,
            "properties": {"target": BOOLEAN}},
        "VmediaAttach": node_vmedia.ATTACH_SCHEMA,
        "VmediaList": {"type": "array", "items": {
            "type": "object", "required": ["media_types", "inserted", "image"],
            "properties": {"media_types": {"type": "array", "items": {"type": "string"}},
                           "inserted": {"type": ["boolean", "null"]},
                           "image": {"type": ["string", "null"]}}}},
    }
