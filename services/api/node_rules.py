"""What a node's writable fields may hold: one check for creation and for patches."""

from __future__ import annotations

from typing import Any

from services.api.versions import Version
from services.api.views import NODE_FIELD_VERSIONS
from services.common import validation
from services.common.enabled_hardware import EnabledHardware
from services.common.exceptions import Invalid
from services.common.hardware_types import UnknownHardwareType
from services.common.node_fields import INTERFACES

DICT_FIELDS = ("driver_info", "properties", "instance_info", "extra", "network_data")
BOOL_FIELDS = ("maintenance", "protected", "retired", "disable_power_off")
INTERFACE_FIELDS = tuple(f"{name}_interface" for name in INTERFACES)
# Free and single-line text, checked by validation.text against FIELD_LIMITS.
TEXT_FIELDS = ("description", "maintenance_reason", "protected_reason", "retired_reason",
               "owner", "lessee", "resource_class", "shard")

WRITABLE = frozenset({
    "name", "description", "driver", *DICT_FIELDS, "instance_uuid", *INTERFACE_FIELDS,
    "resource_class", "conductor_group", "owner", "lessee", "maintenance", "maintenance_reason",
    "automated_clean", "protected", "protected_reason", "retired", "retired_reason",
    "chassis_uuid", "shard", "parent_node", "instance_name", "disable_power_off",
})
CREATABLE = (WRITABLE - {"maintenance", "maintenance_reason"}) | {"uuid"}
DEFAULTS: dict[str, Any] = {name: {} for name in DICT_FIELDS} | {
    "maintenance": False, "protected": False, "retired": False, "conductor_group": "",
    "disable_power_off": False,
}


def field_known(name: str, version: Version) -> bool:
    since = NODE_FIELD_VERSIONS.get(name)
    return since is not None and since <= version


CREATE_NAME_ERROR = "Cannot create node with invalid name '{name}'"  # Ironic's texts
PATCH_NAME_ERROR = "Node {ident}: Cannot change name to invalid name '{name}'"


def check_values(values: dict[str, Any], drivers: EnabledHardware,
                 name_error: str = CREATE_NAME_ERROR) -> dict[str, Any]:
    """Check and normalise node field values; raise Invalid naming the first bad one
    (``name_error``: Ironic's text for a bad name, with ``{name}``)."""
    clean = dict(values)
    for field, value in values.items():
        if value is None:
            if field in DEFAULTS:
                clean[field] = DEFAULTS[field]
            elif field == "driver":
                raise Invalid("A node needs a driver.")
            elif field == "uuid":
                del clean[field]  # a new one is generated, as Ironic does
            continue
        clean[field] = (validation.ironic_name(value, name_error) if field == "name"
                        else _checked(field, value))
    _check_interfaces(clean, drivers)
    return clean


def _checked(field: str, value: Any) -> Any:
    if field in DICT_FIELDS:
        return validation.json_object(field, value)
    if field in BOOL_FIELDS or field == "automated_clean":
        return validation.boolean(field, value)  # "True", "no"...: as Ironic's args.boolean
    if field in TEXT_FIELDS:
        return validation.text(field, value)
    if field == "instance_name":  # 1.104; Ironic's schema: 1 to 255 characters
        if value == "":
            raise Invalid("Invalid input for field/attribute instance_name. Value: ''. "
                          "'' is too short")
        return validation.text(field, value)
    if field in ("uuid", "instance_uuid", "chassis_uuid"):
        return validation.uuid_value(field, value)
    if field == "conductor_group":
        return validation.conductor_group(value)
    if field == "driver":
        return validation.text(field, value)
    if field == "parent_node":  # a UUID or name, made the parent's UUID where nodes are read
        return validation.text(field, value, limit_of="name")
    if field in INTERFACE_FIELDS:
        return validation.text(field, value, limit_of="interface")
    return value


def values_for_create(body: dict[str, Any], default_resource_class: str | None,
                      drivers: EnabledHardware) -> dict[str, Any]:
    """The checked field values of a node to create from ``body`` (POST /v1/nodes names):
    the default resource class when it names none, interfaces from the hardware type."""
    if default_resource_class and body.get("resource_class") is None:
        body = {**body, "resource_class": default_resource_class}
    return check_values(body, drivers)


def _check_interfaces(values: dict[str, Any], drivers: EnabledHardware) -> None:
    if "driver" not in values:
        return
    try:
        hardware_type = drivers.hardware_type(values["driver"])
    except UnknownHardwareType:
        # Ironic's text first (clients match on it), then which ones are enabled.
        raise Invalid(f"No valid host was found. Reason: No conductor service registered which "
                      f"supports driver {values['driver']} for conductor group "
                      f"\"{values.get('conductor_group') or ''}\". Cannot find the hardware type "
                      f"{values['driver']}; enabled are: {', '.join(drivers.hardware_types)}."
                      ) from None
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
