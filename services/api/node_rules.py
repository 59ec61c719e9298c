"""What a node's writable fields may hold: one check for creation and for patches."""

from __future__ import annotations

import uuid
from typing import Any

from services.api.versions import Version
from services.api.views import NODE_FIELD_VERSIONS
from services.common.exceptions import Invalid
from services.common.node_fields import (
    CONDUCTOR_GROUP_RE,
    INTERFACES,
    NAME_RE,
    NODE_NAME_RULE,
    TEXT_FIELDS,
    is_valid_node_name,
)
from services.common.traits import check_traits
from services.drivers.registry import Drivers, UnknownHardwareType

__all__ = ["CONDUCTOR_GROUP_RE", "NAME_RE", "TEXT_FIELDS", "check_depth", "check_traits",
           "check_uuid", "check_values", "field_known"]

# Deeper JSON values could be stored but not rendered back (the serializer stops at 255).
MAX_JSON_DEPTH = 64

DICT_FIELDS = ("driver_info", "properties", "instance_info", "extra", "network_data")
BOOL_FIELDS = ("maintenance", "protected", "retired")
INTERFACE_FIELDS = tuple(f"{name}_interface" for name in INTERFACES)

WRITABLE = frozenset({
    "name", "description", "driver", *DICT_FIELDS, "instance_uuid", *INTERFACE_FIELDS,
    "resource_class", "conductor_group", "owner", "lessee", "maintenance", "maintenance_reason",
    "automated_clean", "protected", "protected_reason", "retired", "retired_reason",
})
CREATABLE = (WRITABLE - {"maintenance", "maintenance_reason"}) | {"uuid", "chassis_uuid"}
DEFAULTS: dict[str, Any] = {name: {} for name in DICT_FIELDS} | {
    "maintenance": False, "protected": False, "retired": False, "conductor_group": "",
}


def field_known(name: str, version: Version) -> bool:
    since = NODE_FIELD_VERSIONS.get(name)
    if name.endswith("_interface") and name in INTERFACE_FIELDS:
        since = since or (9, 9)  # firmware_interface is newer than what we serve
    return since is not None and since <= version


def check_uuid(name: str, value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise Invalid(f"Expected a UUID for {name} but received {value!r}.") from None


def check_values(values: dict[str, Any], drivers: Drivers) -> dict[str, Any]:
    """Check and normalise node field values; raise Invalid naming the first bad one."""
    clean = dict(values)
    for field, value in values.items():
        if value is None:
            if field in DEFAULTS:
                clean[field] = DEFAULTS[field]
            elif field == "driver":
                raise Invalid("A node needs a driver.")
            continue
        if field in DICT_FIELDS and not isinstance(value, dict):
            raise Invalid(f"Invalid value for {field}: expected a JSON object.")
        if field in DICT_FIELDS:
            check_depth(field, value)
        if field in BOOL_FIELDS and not isinstance(value, bool):
            raise Invalid(f"Invalid value for {field}: expected true or false.")
        if field == "automated_clean" and not isinstance(value, bool):
            raise Invalid("Invalid value for automated_clean: expected true, false or null.")
        if field in TEXT_FIELDS and (not isinstance(value, str)
                                     or len(value) > TEXT_FIELDS[field]):
            raise Invalid(f"Invalid value for {field}: expected a string of at most "
                          f"{TEXT_FIELDS[field]} characters.")
        if field == "name" and not is_valid_node_name(value):
            raise Invalid(f"Cannot use {value!r} as a node name: {NODE_NAME_RULE}.")
        if field in ("uuid", "instance_uuid"):
            clean[field] = check_uuid(field, value)
        if field == "chassis_uuid":
            raise Invalid("Chassis are not supported: chassis_uuid must be null.")
        if field == "conductor_group" and (not isinstance(value, str) or len(value) > 255
                                           or not CONDUCTOR_GROUP_RE.match(value)):
            raise Invalid(f"Invalid conductor_group {value!r}: letters, digits, _-. only.")
        if field == "driver" and not isinstance(value, str):
            raise Invalid("Invalid value for driver: expected a string.")
        if field in INTERFACE_FIELDS and not isinstance(value, str):
            raise Invalid(f"Invalid value for {field}: expected a string or null.")
    _check_interfaces(clean, drivers)
    return clean


def values_for_create(body: dict[str, Any], default_resource_class: str | None,
                      drivers: Drivers) -> dict[str, Any]:
    """The checked field values of a node to create from ``body`` (POST /v1/nodes names):
    the default resource class when it names none, interfaces from the hardware type."""
    if default_resource_class and body.get("resource_class") is None:
        body = {**body, "resource_class": default_resource_class}
    values = check_values(body, drivers)
    values.pop("chassis_uuid", None)
    return values


def check_depth(name: str, value: Any) -> None:
    """Refuse JSON values that nest objects and lists more than MAX_JSON_DEPTH deep."""
    level, layer = 0, [value]
    while layer:
        level += 1
        if level > MAX_JSON_DEPTH:
            raise Invalid(f"Invalid value for {name}: nested more than {MAX_JSON_DEPTH} "
                          "levels deep.")
        children = []
        for item in layer:
            if isinstance(item, dict):
                children.extend(item.values())
            elif isinstance(item, list):
                children.extend(item)
        layer = [c for c in children if isinstance(c, dict | list)]


def _check_interfaces(values: dict[str, Any], drivers: Drivers) -> None:
    if "driver" not in values:
        return
    try:
        hardware_type = drivers.hardware_type(values["driver"])
    except UnknownHardwareType:
        raise Invalid(f"Cannot find the hardware type {values['driver']}; enabled are: "
                      f"{', '.join(drivers.hardware_types)}.") from None
    for interface in INTERFACES:
        field = f"{interface}_interface"
        chosen = values.get(field)
        if chosen is None:
            values[field] = hardware_type.default(interface)
        elif not hardware_type.allows(interface, chosen):
            raise Invalid(
                f"Could not find a suitable {interface} interface {chosen!r} for hardware type "
                f"{hardware_type.name}; it supports: "
                f"{', '.join(hardware_type.supported[interface])}."
            )
