"""JSON Schemas of what the Ironic v1 API takes and answers, for the OpenAPI document.

They describe the contract (what a well-behaved client sends) from the rules the routes
enforce, read from their one owner: lengths, grammars and character rules from
``services.common.validation``, MACs from ``services.common.macs``, writable fields from the
routes' modules, states and hardware verbs from ``states`` and ``hardware_types``. Nothing here
is a second validation layer: the routes never read these schemas.
``services/api/openapi.py`` assembles them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from services.api import chassis, node_rules, port_fields, portgroups, ports
from services.api.versions import MAX_VERSION
from services.api.views import (
    ALLOCATION_FIELD_VERSIONS,
    CHASSIS_FIELD_VERSIONS,
    CONDUCTOR_FIELD_VERSIONS,
    NODE_FIELD_VERSIONS,
    PORT_FIELD_VERSIONS,
    PORTGROUP_FIELD_VERSIONS,
)
from services.common import states
from services.common.hardware_types import BOOT_DEVICES, POWER_TARGETS
from services.common.macs import MAC_RE
from services.common.validation import (
    CONDUCTOR_GROUP_RE,
    CONTROL_BUT_LINE_BREAKS,
    CONTROL_CHARACTERS,
    DEPLOY_STEP_SCHEMA,
    FALSE_WORDS,
    FIELD_LIMITS,
    MAX_TRAITS,
    MULTILINE_FIELDS,
    NAME_RE,
    TRAIT_RE,
    TRUE_WORDS,
    UUID_RE,
)

Schema = dict[str, Any]


# The end of the text in every regex dialect: ECMA's "$" (JSON Schema's) is the end, Python's
# (jsonschema's, hypothesis') also matches before a final line break, which the lookahead
# refuses; without it a fuzzer would draw "name\n" as a valid name.
END = r"$(?!\n)"


def whole(pattern: re.Pattern[str]) -> str:
    """A pattern the validation layer matches whole (``fullmatch``) as a JSON Schema pattern
    (which matches anywhere unless anchored)."""
    return f"^(?:{pattern.pattern}){END}"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def field_text(field: str, limit_of: str | None = None, **more: Any) -> Schema:
    """The text ``validation.text(field, value, limit_of)`` accepts: at most its FIELD_LIMITS
    characters, no control character (free text may hold tabs and line breaks)."""
    controls = CONTROL_BUT_LINE_BREAKS if field in MULTILINE_FIELDS else CONTROL_CHARACTERS
    return {"type": "string", "maxLength": FIELD_LIMITS[limit_of or field],
            "pattern": f"^[^{controls}]*{END}", **more}


UUID: Schema = {"type": "string", "format": "uuid", "pattern": whole(UUID_RE),
                "description": "A UUID in its 8-4-4-4-12 form (any case; stored lower-case)."}
NAME: Schema = {"type": "string", "minLength": 1, "maxLength": FIELD_LIMITS["name"],
                "pattern": whole(NAME_RE), "not": {"pattern": f"^-*(?:[0-9a-fA-F]-*){{32}}{END}"},
                "description": "Letters, digits and -._~; never a UUID in any spelling "
                               "(32 hex digits with or without hyphens)."}
NODE_IDENT: Schema = {"anyOf": [UUID, NAME], "description": "A node's UUID or name."}
CONDUCTOR_GROUP: Schema = {"type": "string", "maxLength": FIELD_LIMITS["conductor_group"],
                           "pattern": whole(CONDUCTOR_GROUP_RE)}
TRAIT: Schema = {"type": "string", "maxLength": FIELD_LIMITS["trait"],
                 "pattern": whole(TRAIT_RE),
                 "description": "A standard trait name or CUSTOM_ followed by A-Z, 0-9, _."}
TRAITS: Schema = {"type": "array", "items": TRAIT, "maxItems": MAX_TRAITS}
MAC: Schema = {"type": "string", "pattern": whole(MAC_RE),
               "description": "Stored lower-case with colons."}
BOOLEAN: Schema = {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": sorted(
    {w for word in TRUE_WORDS | FALSE_WORDS for w in (word, word.capitalize())})}],
    "description": "true or false, or a word Ironic reads as one (\"True\", \"no\"...)."}
OBJECT: Schema = {"type": "object", "description": "A JSON object (no NaN or Infinity, no NUL "
                                                   "or lone surrogate in any string)."}
LINKS: Schema = {"type": "array", "items": {
    "type": "object", "properties": {"href": {"type": "string"}, "rel": {"type": "string"}}}}


def _node_field(field: str) -> Schema:
    """What ``node_rules.check_values`` accepts for ``field`` (null: its default)."""
    if field in node_rules.DICT_FIELDS:
        return nullable(OBJECT)
    if field in node_rules.BOOL_FIELDS:
        return nullable(BOOLEAN)
    if field == "automated_clean":
        return nullable({"type": "boolean"})
    if field in node_rules.TEXT_FIELDS:
        return nullable(field_text(field))
    if field in node_rules.INTERFACE_FIELDS:
        return nullable(field_text(field, "interface"))
    if field == "chassis_uuid":
        return nullable(UUID | {"description": "An existing chassis (POST /v1/chassis)."})
    if field == "driver":
        return field_text("driver", description="An enabled hardware type (GET /v1/drivers).")
    if field in ("uuid", "instance_uuid"):
        return nullable(UUID)  # a null uuid: one is generated, as Ironic does
    if field == "conductor_group":
        return nullable(CONDUCTOR_GROUP)
    if field == "name":
        return nullable(NAME)
    if field == "instance_name":
        return nullable(field_text(field, minLength=1))
    if field == "parent_node":
        return nullable(NODE_IDENT | {"description": "An existing node of the same owner "
                                                     "(API 1.83); stored as its UUID."})
    raise ValueError(f"no schema for the node field {field}")


def _node_create() -> Schema:
    fields = sorted(f for f in node_rules.CREATABLE
                    if f == "uuid" or node_rules.field_known(f, MAX_VERSION))
    return {"type": "object", "required": ["driver"], "additionalProperties": False,
            "properties": {field: _node_field(field) for field in fields}}


def _patch(writable: Iterable[str], description: str) -> Schema:
    fields = "|".join(re.escape(field) for field in sorted(writable))
    operation = {
        "type": "object",
        "required": ["op", "path"],
        "additionalProperties": False,
        "properties": {
            "op": {"type": "string", "enum": ["add", "replace", "remove"]},
            "path": {"type": "string", "pattern": f"^/(?:{fields})(?:/.*)?$",
                     "description": "A JSON pointer: /field or /field/key/index, of a "
                                    "writable field."},
            "value": {"description": "Any JSON value (no NaN or Infinity); needed by add "
                                     "and replace."},
        },
    }
    return {"type": "array", "minItems": 1, "items": operation,
            "description": f"JSON Patch (RFC 6902, add/replace/remove). {description}"}


def _port_create() -> Schema:
    link_keys = {key: field_text("local_link_connection")
                 for key in sorted(ports.LOCAL_LINK_KEYS)}
    newer: dict[str, Schema] = {  # 1.94 and later, once Enclume speaks them
        field: nullable(field_text(field, limit_of=limit))
        for field, (limit, since) in port_fields.PORT_TEXTS.items() if since <= MAX_VERSION}
    newer |= {field: nullable(BOOLEAN) for field, (_default, since)
              in port_fields.PORT_FLAGS.items() if since <= MAX_VERSION}
    if port_fields.NODE_IDENT_VERSION <= MAX_VERSION:
        newer["node_ident"] = NODE_IDENT | {"description": "Instead of node_uuid (API 1.94)."}
    return {
        "type": "object",
        "required": ["address"] if "node_ident" in newer else ["address", "node_uuid"],
        "additionalProperties": False,
        "properties": {
            "address": MAC,
            "node_uuid": NODE_IDENT,
            "uuid": nullable(UUID),
            "extra": nullable(OBJECT),
            "local_link_connection": nullable({"type": "object", "additionalProperties": False,
                                               "properties": link_keys}),
            "physical_network": nullable(field_text("physical_network")),
            "pxe_enabled": BOOLEAN,
            "is_smartnic": BOOLEAN,
            "portgroup_uuid": nullable(UUID | {"description": "A port group of the same node "
                                                              "(API 1.24)."}),
            **newer,
        },
    }


def _portgroup_create() -> Schema:
    return {
        "type": "object",
        "required": ["node_uuid"],
        "additionalProperties": False,
        "properties": {
            "node_uuid": NODE_IDENT,
            "uuid": nullable(UUID),
            "name": nullable(NAME),
            "address": nullable(MAC),
            "extra": nullable(OBJECT),
            "standalone_ports_supported": nullable(BOOLEAN),
            "mode": nullable(field_text("mode", description="API 1.26; default "
                                                            f"{portgroups.DEFAULT_MODE}.")),
            "properties": nullable(OBJECT | {"description": "API 1.26."}),
            **{field: nullable(field_text(field, limit_of=limit) | {
                "description": f"Shown from API {since[0]}.{since[1]}."})
               for field, (limit, since) in port_fields.PORTGROUP_TEXTS.items()},
            **{field: nullable(BOOLEAN) for field in port_fields.PORTGROUP_FLAGS},
        },
    }


def _chassis_create() -> Schema:
    return {"type": "object", "additionalProperties": False, "properties": {
        "uuid": nullable(UUID), "extra": nullable(OBJECT),
        "description": nullable(field_text("description", "chassis_description"))}}


def _allocation_create() -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "A resource_class, or a node to backfill (API 1.58), is needed.",
        "properties": {
            "resource_class": nullable(field_text("resource_class")),
            "traits": nullable(TRAITS),
            "candidate_nodes": nullable({"type": "array", "items": NODE_IDENT}),
            "name": nullable(NAME),
            "uuid": nullable(UUID),
            "extra": nullable(OBJECT),
            "owner": nullable(field_text("owner", description="API 1.60.")),
            "node": nullable(NODE_IDENT | {"description": "A node UUID or name to backfill "
                                                          "(API 1.58)."}),
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
            "deploy_steps": {"type": "array", "items": DEPLOY_STEP_SCHEMA},
            "rescue_password": nullable(field_text("rescue_password")),
            "disable_ramdisk": {"type": "boolean"},
        },
    }


def _heartbeat() -> Schema:
    return {
        "type": "object", "required": ["callback_url"], "additionalProperties": False,
        "properties": {
            "callback_url": field_text("callback_url") | {
                "format": "uri", "pattern": f"^https?://[^{CONTROL_CHARACTERS}]+{END}",
                "description": "http(s)://<the address the heartbeat comes from>:<port>, "
                               "without credentials, query or fragment."},
            "agent_token": nullable(field_text("agent_token")),
            "agent_version": nullable(field_text("agent_version"))}}


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
        "NodePatch": _patch(node_rules.WRITABLE, "Writable node fields: "
                            + ", ".join(sorted(node_rules.WRITABLE)) + "."),
        "PortCreate": _port_create(),
        "PortPatch": _patch(ports.WRITABLE, "Writable port fields: "
                            + ", ".join(sorted(ports.WRITABLE)) + "."),
        "PortgroupCreate": _portgroup_create(),
        "PortgroupPatch": _patch(portgroups.WRITABLE, "Writable port group fields: "
                                 + ", ".join(sorted(portgroups.WRITABLE)) + "."),
        "ChassisCreate": _chassis_create(),
        "ChassisPatch": _patch(chassis.WRITABLE, "Writable chassis fields: "
                               + ", ".join(sorted(chassis.WRITABLE)) + "."),
        "AllocationCreate": _allocation_create(),
        "AllocationPatch": _patch(("name", "extra"), "Only /name and /extra (API 1.57)."),
        "ProvisionStateChange": _provision(),
        "PowerStateChange": {
            "type": "object", "required": ["target"], "additionalProperties": False,
            "properties": {"target": {"type": "string", "enum": list(POWER_TARGETS)},
                           "timeout": nullable({"type": "integer", "minimum": 1})}},
        "ConsoleChange": {
            "type": "object", "required": ["enabled"], "additionalProperties": False,
            "properties": {"enabled": {"type": "boolean"}}},
        "BootDevice": {
            "type": "object", "required": ["boot_device"], "additionalProperties": False,
            "properties": {"boot_device": {"type": "string", "enum": list(BOOT_DEVICES)},
                           "persistent": {"type": "boolean"}}},
        "RaidConfig": {  # checked by the node's raid interface against Ironic's schema
            "type": "object", "properties": {"logical_disks": {
                "type": "array", "items": {"type": "object"}}}},
        "Maintenance": {
            "type": "object", "additionalProperties": False,
            "properties": {"reason": nullable(field_text("maintenance_reason"))}},
        "Traits": {
            "type": "object", "required": ["traits"], "additionalProperties": False,
            "properties": {"traits": TRAITS}},
        "Vif": {
            "type": "object", "required": ["id"],
            "description": "A VIF to attach (API 1.28): its ID, and optionally port_uuid "
                           "(1.67), physical_network(s) (Enclume: the VIF's physical "
                           "networks, which Ironic reads from Neutron).",
            "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 255},
                           "port_uuid": UUID,
                           "physical_network": {"type": "string"},
                           "physical_networks": {"type": "array",
                                                 "items": {"type": "string"}}}},
        "VifCollection": {
            "type": "object", "required": ["vifs"], "additionalProperties": False,
            "properties": {"vifs": {"type": "array", "items": {
                "type": "object", "required": ["id"],
                "properties": {"id": {"type": "string"}}}}}},
        "Heartbeat": _heartbeat(),
        "ContinueInspection": {
            "type": "object", "required": ["inventory"],
            "properties": {"inventory": OBJECT, "plugin_data": OBJECT}},
        "Node": _document(NODE_FIELD_VERSIONS, uuid_text | {
            "name": nullable(NAME), "driver": {"type": "string"},
            "conductor_group": CONDUCTOR_GROUP,
            "maintenance": {"type": "boolean"}, "traits": {"type": "array", "items": TRAIT},
            "driver_info": OBJECT, "properties": OBJECT, "instance_info": OBJECT}),
        "NodeCollection": _collection("nodes", "Node"),
        "Port": _document(PORT_FIELD_VERSIONS, uuid_text | {
            "address": MAC, "node_uuid": UUID}),
        "PortCollection": _collection("ports", "Port"),
        "Portgroup": _document(PORTGROUP_FIELD_VERSIONS, uuid_text | {
            "name": nullable(NAME), "address": nullable(MAC), "node_uuid": UUID}),
        "PortgroupCollection": _collection("portgroups", "Portgroup"),
        "Chassis": _document(CHASSIS_FIELD_VERSIONS, uuid_text),
        "ChassisCollection": _collection("chassis", "Chassis"),
        "Allocation": _document(ALLOCATION_FIELD_VERSIONS, uuid_text | {
            "name": nullable(NAME), "state": {"type": "string"},
            "traits": {"type": "array", "items": TRAIT}}),
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
        "BiosCollection": {"type": "object", "required": ["bios"],
                           "properties": {"bios": {"type": "array",
                                                   "items": ref("BiosSetting")}}},
        "BiosSetting": {"type": "object", "properties": {
            "name": {"type": "string"}, "value": {"type": ["string", "null"]},
            "created_at": {"type": "string"}, "updated_at": {"type": ["string", "null"]}}},
        "FirmwareCollection": {"type": "object", "required": ["firmware"], "properties": {
            "firmware": {"type": "array", "items": {"type": "object", "properties": {
                "component": {"type": "string"},
                "initial_version": {"type": ["string", "null"]},
                "current_version": {"type": ["string", "null"]},
                "last_version_flashed": {"type": ["string", "null"]}}}}}},
        "Lookup": {"type": "object", "required": ["node", "config"],
                   "properties": {"node": OBJECT, "config": OBJECT}},
        "Versions": OBJECT,
    }
