"""What a node's writable fields may hold: one check for creation and for patches."""

from __future__ import annotations

import re
import uuid
from typing import Any

from services.api.versions import Version
from services.api.views import NODE_FIELD_VERSIONS
from services.common.exceptions import Invalid
from services.common.models import INTERFACES
from services.common.traits import check_traits
from services.drivers.registry import Drivers, UnknownHardwareType

__all__ = ["check_depth", "check_traits", "check_uuid", "check_values", "field_known"]

NAME_RE = re.compile(r"^[a-zA-Z0-9\-._~]+$")
CONDUCTOR_GROUP_RE = re.compile(r"^[a-zA-Z0-9_\-.]*$")
# Deeper JSON values could be stored but not rendered back (the serializer stops at 255).
MAX_JSON_DEPTH = 64

DICT_FIELDS = ("driver_info", "properties", "instance_info", "extra", "network_data")
BOOL_FIELDS = ("maintenance", "protected", "retired")
TEXT_FIELDS = {"description": 4096, "maintenance_reason": 4096, "protected_reason": 255,
               "retired_reason": 255, "owner": 255, "lessee": 255, "resource_class": 80}
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
        if field == "name" and (not isinstance(value, str) or not NAME_RE.match(value)
                                or len(value) > 255 or _uuid_like(value)):
            raise Invalid(f"Cannot use {value!r} as a node name: names are 1-255 characters "
                          "from letters, digits and -._~, and must not look like a UUID.")
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


def _uuid_like(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


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
