"""JSON Schemas of what the Ironic v1 API takes and answers, for the OpenAPI document.

They describe the contract (what a well-behaved client sends), built from the rules the routes
enforce (node_fields, traits, states, the drivers' verbs), not a second validation layer: the
routes validate by themselves and never read these. ``services/api/openapi.py`` assembles them.
"""

from __future__ import annotations

from typing import Any

from services.api import node_rules, ports
from services.api.views import (
    ALLOCATION_FIELD_VERSIONS,
    CONDUCTOR_FIELD_VERSIONS,
    NODE_FIELD_VERSIONS,
    PORT_FIELD_VERSIONS,
)
from services.common import states
from services.common.node_fields import (
    CONDUCTOR_GROUP_RE,
    MAX_NAME_LENGTH,
    NAME_RE,
    TEXT_FIELDS,
)
from services.common.traits import MAX_TRAITS, TRAIT_RE
from services.drivers.base import BOOT_DEVICES, POWER_TARGETS

Schema = dict[str, Any]

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MAC_PATTERN = r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$"
# Identifiers and free text longer than this are refused where no tighter limit applies.
MAX_TEXT = 255


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def text(max_length: int = MAX_TEXT, **more: Any) -> Schema:
    return {"type": "string", "maxLength": max_length, **more}


UUID: Schema = {"type": "string", "format": "uuid", "pattern": UUID_PATTERN,
                "description": "A UUID in its canonical lower-case form."}
NAME: Schema = text(MAX_NAME_LENGTH, minLength=1, pattern=NAME_RE.pattern,
                    description="Letters, digits and -._~; never UUID-like.")
TRAIT: Schema = text(MAX_TEXT, pattern=TRAIT_RE.pattern,
                     description="A standard trait name or CUSTOM_ followed by A-Z, 0-9, _.")
OBJECT: Schema = {"type": "object", "description": "A JSON object (no NaN or Infinity)."}
LINKS: Schema = {"type": "array", "items": {
    "type": "object", "properties": {"href": {"type": "string"}, "rel": {"type": "string"}}}}


def _node_create() -> Schema:
    properties: dict[str, Schema] = {
        "uuid": UUID,
        "name": nullable(NAME),
        "driver": text(description="An enabled hardware type (GET /v1/drivers)."),
        "instance_uuid": nullable(UUID),
        "chassis_uuid": {"type": "null", "description": "Chassis are not supported."},
        "conductor_group": text(pattern=CONDUCTOR_GROUP_RE.pattern),
        "automated_clean": nullable({"type": "boolean"}),
    }
    properties |= {field: OBJECT for field in node_rules.DICT_FIELDS}
    properties |= {field: {"type": "boolean"} for field in ("protected", "retired")}
    properties |= {field: nullable(text(limit)) for field, limit in TEXT_FIELDS.items()
                   if field != "maintenance_reason"}
    properties |= {field: nullable(text()) for field in node_rules.INTERFACE_FIELDS
                   if field != "firmware_interface"}
    return {"type": "object", "required": ["driver"], "additionalProperties": False,
            "properties": properties}


def _patch(description: str) -> Schema:
    operation = {
        "type": "object",
        "required": ["op", "path"],
        "additionalProperties": False,
        "properties": {
            "op": {"type": "string", "enum": ["add", "replace", "remove"]},
            "path": {"type": "string", "pattern": r"^(/[^/]+)+$",
                     "description": "A JSON pointer: /field or /field/key/index."},
            "value": {"description": "Any JSON value (no NaN or Infinity); needed by add "
                                     "and replace."},
        },
    }
    return {"type": "array", "minItems": 1, "items": operation,
            "description": f"JSON Patch (RFC 6902, add/replace/remove). {description}"}


def _port_create() -> Schema:
    link_keys = {key: text() for key in sorted(ports.LOCAL_LINK_KEYS)}
    return {
        "type": "object",
        "required": ["address", "node_uuid"],
        "additionalProperties": False,
        "properties": {
            "address": {"type": "string", "pattern": MAC_PATTERN},
            "node_uuid": UUID,
            "uuid": UUID,
            "extra": OBJECT,
            "local_link_connection": {"type": "object", "additionalProperties": False,
                                      "properties": link_keys},
            "physical_network": nullable(text(64)),
            "pxe_enabled": {"type": "boolean"},
            "is_smartnic": {"type": "boolean"},
            "portgroup_uuid": {"type": "null", "description": "Port groups are not supported."},
        },
    }


def _allocation_create() -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "resource_class": nullable(text(TEXT_FIELDS["resource_class"])),
            "traits": {"type": "array", "items": TRAIT, "maxItems": MAX_TRAITS},
            "candidate_nodes": {"type": "array", "items": text(),
                                "description": "Node UUIDs or names."},
            "name": nullable(NAME),
            "uuid": UUID,
            "extra": OBJECT,
            "owner": nullable(text(TEXT_FIELDS["owner"])),
            "node": text(description="A node UUID or name to backfill (API 1.58)."),
        },
    }


def _provision() -> Schema:
    return {
        "type": "object",
        "required": ["target"],
        "additionalProperties": False,
        "properties": {
            "target": {"type": "string", "enum": sorted(states.API_TARGET_EVENTS),
                       "description": "Some targets need a newer microversion (docs/api.md)."},
            "configdrive": {"anyOf": [{"type": "string"}, OBJECT, {"type": "null"}]},
            "clean_steps": {"type": "array", "items": OBJECT},
            "deploy_steps": {"type": "array", "items": OBJECT},
            "rescue_password": text(),
            "disable_ramdisk": {"type": "boolean"},
        },
    }


def _document(fields: dict[str, Any], typed: dict[str, Schema]) -> Schema:
    """A resource as served: the fields of the requested microversion, some typed."""
    return {"type": "object",
            "properties": {name: typed.get(name, {}) for name in fields}}


def _collection(member: str, item: str) -> Schema:
    return {"type": "object", "required": [member],
            "properties": {member: {"type": "array", "items": ref(item)},
                           "next": {"type": "string", "description": "The next page's URL."}}}


def component_schemas() -> dict[str, Schema]:
    """The ``components.schemas`` of the document."""
    uuid_text = {"uuid": UUID, "links": LINKS, "extra": OBJECT}
    return {
        "Error": {
            "type": "object",
            "required": ["error_message"],
            "properties": {"error_message": {
                "type": "string",
                "description": "A JSON document as a string: {\"faultstring\": message, "
                               "\"faultcode\": \"Client\" or \"Server\", \"debuginfo\": null}."}},
        },
        "NodeCreate": _node_create(),
        "NodePatch": _patch("Writable node fields: "
                            + ", ".join(sorted(node_rules.WRITABLE)) + "."),
        "PortCreate": _port_create(),
        "PortPatch": _patch("Writable port fields: " + ", ".join(sorted(ports.WRITABLE)) + "."),
        "AllocationCreate": _allocation_create(),
        "AllocationPatch": _patch("Only /name and /extra (API 1.57)."),
        "ProvisionStateChange": _provision(),
        "PowerStateChange": {
            "type": "object", "required": ["target"], "additionalProperties": False,
            "properties": {"target": {"type": "string", "enum": list(POWER_TARGETS)},
                           "timeout": {"type": "integer", "minimum": 1}}},
        "BootDevice": {
            "type": "object", "required": ["boot_device"], "additionalProperties": False,
            "properties": {"boot_device": {"type": "string", "enum": list(BOOT_DEVICES)},
                           "persistent": {"type": "boolean"}}},
        "Maintenance": {
            "type": "object", "additionalProperties": False,
            "properties": {"reason": nullable(text(TEXT_FIELDS["maintenance_reason"]))}},
        "Traits": {
            "type": "object", "required": ["traits"], "additionalProperties": False,
            "properties": {"traits": {"type": "array", "items": TRAIT,
                                      "maxItems": MAX_TRAITS}}},
        "Heartbeat": {
            "type": "object", "required": ["callback_url"], "additionalProperties": False,
            "properties": {"callback_url": {"type": "string", "format": "uri",
                                            "pattern": "^https?://"},
                           "agent_token": text(),
                           "agent_version": text(64)}},
        "ContinueInspection": {
            "type": "object", "required": ["inventory"],
            "properties": {"inventory": OBJECT, "plugin_data": OBJECT}},
        "Node": _document(NODE_FIELD_VERSIONS, uuid_text | {
            "name": nullable({"type": "string"}), "driver": {"type": "string"},
            "maintenance": {"type": "boolean"}, "traits": {"type": "array"},
            "driver_info": OBJECT, "properties": OBJECT, "instance_info": OBJECT}),
        "NodeCollection": _collection("nodes", "Node"),
        "Port": _document(PORT_FIELD_VERSIONS, uuid_text | {
            "address": {"type": "string"}, "node_uuid": UUID}),
        "PortCollection": _collection("ports", "Port"),
        "Allocation": _document(ALLOCATION_FIELD_VERSIONS, uuid_text | {
            "state": {"type": "string"}, "traits": {"type": "array"}}),
        "AllocationCollection": _collection("allocations", "Allocation"),
        "Conductor": _document(CONDUCTOR_FIELD_VERSIONS, {"hostname": {"type": "string"},
                                                          "alive": {"type": "boolean"}}),
        "ConductorCollection": _collection("conductors", "Conductor"),
        "Driver": {"type": "object", "required": ["name"],
                   "properties": {"name": {"type": "string"}, "hosts": {"type": "array"}}},
        "DriverCollection": _collection("drivers", "Driver"),
        "HistoryCollection": _collection("history", "HistoryEvent"),
        "HistoryEvent": {"type": "object", "properties": {
            "uuid": UUID, "created_at": {"type": "string"}, "severity": {"type": "string"},
            "event": {"type": "string"}}},
        "Lookup": {"type": "object", "required": ["node", "config"],
                   "properties": {"node": OBJECT, "config": OBJECT}},
        "Versions": OBJECT,
    }
