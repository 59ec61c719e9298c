"""The one set of rules for what a client may send: strings, identifiers and JSON values.

- Every text field is NFC-normalised, refused if it holds a lone surrogate or a control
  character (free-text fields may hold tabs and line breaks) or is longer than its limit in
  ``FIELD_LIMITS`` (Ironic's column sizes where Ironic has them).
- Identifiers follow strict grammars matched whole (``fullmatch``: no trailing newline): UUIDs
  (canonical form, stored lower-case), names, traits, conductor groups; MACs in ``macs``.
- JSON values (request bodies, ``extra``, ``properties``...) hold no NaN or Infinity and no NUL
  or lone surrogate in any string or key at any depth, and nest at most ``MAX_JSON_DEPTH`` deep.
  Their strings are kept as sent (not normalised): they may be passwords or checksummed data.

Everything raises ``Invalid`` (a 400). No web framework here: the API, the CLI's inventory
checks and the discovery rules use these rules alike.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import uuid
from typing import Any

from services.common.exceptions import Invalid

# field -> the longest value accepted, in characters (after NFC).
FIELD_LIMITS: dict[str, int] = {
    "name": 255,
    "description": 4096,
    "maintenance_reason": 4096,
    "protected_reason": 255,
    "retired_reason": 255,
    "owner": 255,
    "lessee": 255,
    "resource_class": 80,
    "conductor_group": 255,
    "driver": 255,
    "interface": 255,
    "shard": 255,
    "instance_name": 255,
    "mode": 255,  # a port group's bonding mode
    "chassis_description": 255,
    "runbook_description": 255,
    "trait": 255,
    "physical_network": 64,
    "port_description": 255,  # a port's (Ironic's limits: 255, vendor 32, category 80)
    "vendor": 32,
    "category": 80,
    "vif": 255,  # a VIF's ID (a Neutron port's UUID for Nova)
    "local_link_connection": 255,  # each of its values: switch_id, port_id, switch_info...
    "boot_device": 255,
    "target": 255,
    "step": 255,  # a clean or deploy step's name
    "rescue_password": 255,
    "agent_version": 64,
    "agent_token": 255,
    "callback_url": 2048,
    "connector_type": 32,  # a volume connector's type (iqn, ip, mac, wwnn, wwpn...)
    "connector_id": 255,
    "volume_type": 64,
    "volume_id": 36,
}
# Fields whose text may span lines: tabs and line breaks are allowed there, no other control.
MULTILINE_FIELDS = frozenset({"description", "maintenance_reason", "protected_reason",
                              "retired_reason"})
# Deeper JSON values could be stored but not rendered back (the serializer stops at 255).
MAX_JSON_DEPTH = 64

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
NAME_RE = re.compile(r"[a-zA-Z0-9\-._~]+")
NAME_RULE = (f"names are 1-{FIELD_LIMITS['name']} characters from letters, digits and -._~, "
             "and must not look like a UUID")
CONDUCTOR_GROUP_RE = re.compile(r"[a-zA-Z0-9_\-.]*")
TRAIT_RE = re.compile(r"CUSTOM_[A-Z0-9_]+|[A-Z][A-Z0-9_]*")
MAX_TRAITS = 50
MIN_VLAN, MAX_VLAN = 1, 4094

# Unicode's control characters (category Cc), and the same less tab and line breaks, as the
# inside of a character class (the OpenAPI document's text patterns are built from them too).
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
CONTROL_BUT_LINE_BREAKS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
_CONTROL_BUT_LINE_BREAKS = re.compile(f"[{CONTROL_BUT_LINE_BREAKS}]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# int() also reads other scripts' digits, spaces and underscores: ASCII digits only here.
_INTEGER = re.compile(r"-?[0-9]{1,18}")


def _bad_character(value: str, multiline: bool) -> str | None:
    if _SURROGATE.search(value):
        return "a lone surrogate"
    control = (_CONTROL_BUT_LINE_BREAKS if multiline else _CONTROL).search(value)
    return f"the control character {control.group()!r}" if control else None


def text(field: str, value: Any, limit_of: str | None = None) -> str:
    """``value`` as the NFC text of ``field``; Invalid if it is not a clean string in limits.

    ``limit_of`` names the FIELD_LIMITS entry when it differs from ``field`` (interfaces).
    """
    limit = FIELD_LIMITS[limit_of or field]
    if not isinstance(value, str):
        raise Invalid(f"Invalid value for {field}: expected a string of at most {limit} "
                      "characters.")
    problem = _bad_character(value, field in MULTILINE_FIELDS)
    if problem:
        raise Invalid(f"Invalid value for {field}: it holds {problem}.")
    value = unicodedata.normalize("NFC", value)
    if len(value) > limit:
        raise Invalid(f"Invalid value for {field}: expected a string of at most {limit} "
                      "characters.")
    return value


def form_text(field: str, value: str) -> str:
    """A web form's text value, NFC; Invalid if it holds a control character (line breaks
    allowed: text areas) or a lone surrogate."""
    problem = _bad_character(value, multiline=True)
    if problem:
        raise Invalid(f"Invalid value for {field}: it holds {problem}.")
    return unicodedata.normalize("NFC", value)


def integer(field: str, value: Any) -> int:
    """An integer written in ASCII digits (a query parameter); Invalid otherwise."""
    if not isinstance(value, str) or _INTEGER.fullmatch(value) is None:
        raise Invalid(f"Invalid value for {field}: {shown(value)}.")
    return int(value)


TRUE_WORDS = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_WORDS = frozenset({"0", "f", "false", "off", "n", "no"})


def boolean(field: str, value: Any) -> bool:
    """true/false, or a string Ironic reads as one ("True", "yes", "0"... any case), as
    oslo's strict ``bool_from_string`` does; Invalid otherwise."""
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise Invalid(f"Invalid value for {field}: {shown(value)}, expected a boolean.")


def is_vlan_id(number: Any) -> bool:
    """An int (never a bool) in 802.1Q's usable range; each caller parses its own input forms."""
    return not isinstance(number, bool) and isinstance(number, int) and (
        MIN_VLAN <= number <= MAX_VLAN)


def is_uuid(value: Any) -> bool:
    """Whether ``value`` is a UUID in its canonical 8-4-4-4-12 form (any case)."""
    return isinstance(value, str) and UUID_RE.fullmatch(value) is not None


def looks_like_uuid(value: str) -> bool:
    """Whether ``value`` is any spelling Python reads as a UUID (refused as a name)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def uuid_value(field: str, value: Any) -> str:
    """``value`` as a lower-case canonical UUID; Invalid (Ironic's text) otherwise."""
    if not is_uuid(value):
        raise Invalid(f"Expected UUID for {field}: {as_sent(value)}")
    return str(value).lower()


def is_valid_name(value: Any) -> bool:
    return (isinstance(value, str) and NAME_RE.fullmatch(value) is not None
            and len(value) <= FIELD_LIMITS["name"] and not looks_like_uuid(value))


def name(value: Any, kind: str = "node") -> str:
    if not is_valid_name(value):
        raise Invalid(f"Cannot use {shown(value)} as a {kind} name: {NAME_RULE}.")
    return str(value)


def ironic_name(value: Any, error: str) -> str:
    """``value`` as a resource's name; Invalid otherwise, with Ironic's ``error`` text first
    (its ``{name}`` filled in: clients match on it), then the rule."""
    if not is_valid_name(value):
        raise Invalid(f"{error.replace('{name}', as_sent(value))}: {NAME_RULE}.")
    return str(value)


def is_node_ident(value: Any) -> bool:
    """Whether ``value`` can name a node: its UUID or a valid name."""
    return isinstance(value, str) and (is_uuid(value) or is_valid_name(value))


def node_ident(field: str, value: Any) -> str:
    """A reference to a node: its UUID or its name (checked before any database lookup)."""
    if is_node_ident(value):
        return value
    raise Invalid(f"Invalid {field}: expected a node UUID or name but received "
                  f"{shown(value)}.")


def conductor_group(value: Any) -> str:
    group = text("conductor_group", value)
    if CONDUCTOR_GROUP_RE.fullmatch(group) is None:
        raise Invalid(f"Invalid conductor_group {group!r}: letters, digits, _-. only.")
    return group


# Ironic's jsonschema texts for a bad trait: a node's (PUT .../traits/{trait}) and an
# allocation's (its `traits` list, where the client's tests match "does not match").
NODE_TRAIT_ERROR = "Schema error for trait: {trait} is not valid under any of the given schemas"
ALLOCATION_TRAIT_ERROR = "Schema error for allocation: {trait} does not match '^CUSTOM_[A-Z0-9_]+$'"


def traits(values: Any, schema_error: str = NODE_TRAIT_ERROR) -> list[str]:
    """The traits as a list without duplicates; Invalid naming the first bad one
    (``schema_error``: Ironic's text, with ``{trait}``)."""
    if not isinstance(values, list) or not all(isinstance(t, str) for t in values):
        raise Invalid("Invalid traits: expected a list of strings.")
    for trait in values:
        if len(trait) > FIELD_LIMITS["trait"] or TRAIT_RE.fullmatch(trait) is None:
            # Ironic's jsonschema text first (clients match on it), then the rule.
            raise Invalid(schema_error.replace("{trait}", shown(trait))
                          + f". Invalid trait {shown(trait)}: a trait is a "
                          "standard trait name or CUSTOM_ followed by upper-case letters, "
                          "digits and underscores.")
    unique = list(dict.fromkeys(values))
    if len(unique) > MAX_TRAITS:
        raise Invalid(f"A node can have at most {MAX_TRAITS} traits.")
    return unique


def json_value(field: str, value: Any) -> Any:
    """``value`` if it is a JSON value we can store and render back; Invalid otherwise."""
    level, layer = 0, [value]
    while layer:
        level += 1
        if level > MAX_JSON_DEPTH:
            raise Invalid(f"Invalid value for {field}: nested more than {MAX_JSON_DEPTH} "
                          "levels deep.")
        children: list[Any] = []
        for item in layer:
            if isinstance(item, dict):
                for key in item:
                    _check_json_string(field, key)
                children.extend(item.values())
            elif isinstance(item, list):
                children.extend(item)
            else:
                _check_json_scalar(field, item)
        layer = [child for child in children if isinstance(child, dict | list)]
        for child in children:
            if not isinstance(child, dict | list):
                _check_json_scalar(field, child)
    return value


def json_object(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"Invalid value for {field}: expected a JSON object.")
    json_value(field, value)
    return value


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, checked with ``json_value``; Invalid if it is not one."""
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise Invalid("There was an error parsing the body: it is not UTF-8.") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        if isinstance(exc, json.JSONDecodeError):
            raise Invalid("Invalid JSON in the request body.") from None
        raise Invalid("Invalid JSON in the request body: a number is too long.") from None
    return json_value("the request body", document)


def _refuse_constant(constant: str) -> Any:
    raise Invalid(f"Invalid JSON in the request body: {constant} is not a JSON number.")


def _check_json_scalar(field: str, value: Any) -> None:
    if isinstance(value, str):
        _check_json_string(field, value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise Invalid(f"Invalid value for {field}: NaN and Infinity are not JSON numbers.")
    elif value is not None and not isinstance(value, bool | int | float):
        raise Invalid(f"Invalid value for {field}: {type(value).__name__} is not JSON.")


def _check_json_string(field: str, value: str) -> None:
    if "\x00" in value:
        raise Invalid(f"Invalid value for {field}: a string holds a NUL character.")
    if _SURROGATE.search(value):
        raise Invalid(f"Invalid value for {field}: a string holds a lone surrogate.")


def as_sent(value: Any) -> str:
    """``value`` in an error message as Ironic shows it (as sent) when it is short printable
    text, else ``shown``."""
    if isinstance(value, str) and value.isprintable() and len(value) <= 255:
        return value
    return shown(value)


def invalid_ident(value: Any) -> Invalid:
    """Ironic's 400 for a path ident that is neither a UUID nor a logical name."""
    return Invalid(f"Expected a logical name or UUID but received {as_sent(value)}.")


def shown(value: Any) -> str:
    """``value`` for an error message: short, and encodable whatever it holds."""
    shown = ascii(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


# The interfaces whose steps a user or a deploy template may name, highest interface priority
# first (Ironic's DEPLOYING_INTERFACE_PRIORITY: it orders steps of equal priority).
STEP_INTERFACES = ("vendor", "power", "management", "firmware", "deploy", "bios", "raid")


def _step_schema(ordering: str, required: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "args": {"type": "object"},
            "interface": {"type": "string", "enum": list(STEP_INTERFACES)},
            ordering: {"anyOf": [{"type": "integer", "minimum": 0},
                                 {"type": "string", "minLength": 1, "pattern": "^[0-9]+$"}]},
            "step": {"type": "string", "minLength": 1},
        },
        "required": ["interface", "step", *required, ordering],
        "additionalProperties": False,
    }


# Ironic's schema of a deploy step (a provision request's deploy_steps, a deploy template's)
# and of a runbook's step (API 1.92: an "order" instead of a priority, args optional).
DEPLOY_STEP_SCHEMA: dict[str, Any] = _step_schema("priority", ("args",))
RUNBOOK_STEP_SCHEMA: dict[str, Any] = _step_schema("order", ())


def deploy_steps(field: str, value: Any) -> list[dict[str, Any]]:
    """Deploy steps as Ironic's schema accepts them, priorities as integers; Invalid with
    Ironic's "Invalid <field>: <the schema's complaint>"."""
    return _steps(field, value, DEPLOY_STEP_SCHEMA, "priority")


def runbook_steps(field: str, value: Any) -> list[dict[str, Any]]:
    """A runbook's steps, as ``deploy_steps`` checks them, with their ``order``."""
    return _steps(field, value, RUNBOOK_STEP_SCHEMA, "order")


# Ironic's schema of a provision request's clean or service steps (no priority, args optional).
REQUEST_STEP_SCHEMA: dict[str, Any] = {
    key: value for key, value in _step_schema("order", ()).items() if key != "required"
} | {"required": ["interface", "step"]}


def service_steps(field: str, value: Any) -> list[dict[str, Any]]:
    """A service request's steps (API 1.87) as Ironic's _STEPS_SCHEMA checks them."""
    import jsonschema

    try:
        jsonschema.validate(value, {"type": "array", "items": REQUEST_STEP_SCHEMA})
    except jsonschema.ValidationError as exc:
        raise Invalid(f"Invalid {field}: {exc.message}") from None
    json_value(field, value)
    return [{**step, "args": step.get("args", {}), "step": text("step", step["step"])}
            for step in value]


def _steps(field: str, value: Any, schema: dict[str, Any], ordering: str
           ) -> list[dict[str, Any]]:
    import jsonschema  # here, not at start: it costs every server ~4 MiB of RSS it rarely needs

    try:
        jsonschema.validate(value, {"type": "array", "items": schema})
    except jsonschema.ValidationError as exc:
        raise Invalid(f"Invalid {field}: {exc.message}") from None
    json_value(field, value)
    return [{**step, "args": step.get("args", {}), "step": text("step", step["step"]),
             ordering: int(step[ordering])} for step in value]
