"""A node's RAID configuration as Ironic describes it (``target_raid_config``, ``raid_config``):
the JSON schema it is checked against (Ironic's ironic/drivers/raid_config_schema.json), the
logical disk properties ``GET /v1/drivers/{name}/raid/logical_disk_properties`` lists, and what
a RAID interface's steps read of it. Pure: the API, the conductor and the drivers share it."""

from __future__ import annotations

from typing import Any

# Ironic's RAID configuration schema (draft 4, as Ironic's file declares), unchanged.
SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "title": "raid configuration json schema",
    "type": "object",
    "properties": {
        "logical_disks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "raid_level": {
                        "type": "string",
                        "enum": ["JBOD", "0", "1", "2", "5", "6", "1+0", "5+0", "6+0"],
                        "description": "RAID level for the logical disk. Valid values are "
                                       "'JBOD', '0', '1', '2', '5', '6', '1+0', '5+0' and "
                                       "'6+0'. Required."},
                    "size_gb": {
                        "anyOf": [{"type": "integer", "minimum": 0},
                                  {"type": "string", "enum": ["MAX"]}],
                        "description": "Size in GiB (Integer) for the logical disk. Use 'MAX' "
                                       "as size_gb if this logical disk is supposed to use the "
                                       "rest of the space available. Required."},
                    "volume_name": {
                        "type": "string",
                        "description": "Name of the volume to be created. If this is not "
                                       "specified, it will be auto-generated. Optional."},
                    "is_root_volume": {
                        "type": "boolean",
                        "description": "Specifies whether this disk is a root volume. By "
                                       "default, this is False. Optional."},
                    "share_physical_disks": {
                        "type": "boolean",
                        "description": "Specifies whether other logical disks can share "
                                       "physical disks with this logical disk. By default, "
                                       "this is False. Optional."},
                    "disk_type": {
                        "type": "string",
                        "enum": ["hdd", "ssd"],
                        "description": "The type of disk preferred. Valid values are 'hdd' "
                                       "and 'ssd'. If this is not specified, disk type will "
                                       "not be a selection criterion for choosing backing "
                                       "physical disks. Optional."},
                    "interface_type": {
                        "type": "string",
                        "enum": ["sata", "scsi", "sas"],
                        "description": "The interface type of disk. Valid values are 'sata', "
                                       "'scsi' and 'sas'. If this is not specified, interface "
                                       "type will not be a selection criterion for choosing "
                                       "backing physical disks. Optional."},
                    "number_of_physical_disks": {
                        "type": "integer",
                        "minimum": 0,
                        "exclusiveMinimum": True,
                        "description": "Number of physical disks to use for this logical "
                                       "disk. By default, the driver uses the minimum number "
                                       "of disks required for that RAID level. Optional."},
                    "controller": {
                        "type": "string",
                        "description": "Controller to use for this logical disk. If not "
                                       "specified, the driver will choose a suitable RAID "
                                       "controller on the bare metal node. Optional."},
                    "physical_disks": {
                        "anyOf": [{"type": "array", "items": {"type": "string"}},
                                  {"type": "array", "items": {"type": "object"},
                                   "minItems": 2}],
                        "description": "The physical disks to use for this logical disk. If "
                                       "not specified, the driver will choose suitable "
                                       "physical disks to use. Optional."},
                },
                "required": ["raid_level", "size_gb"],
                "additionalProperties": False,
                "dependencies": {"physical_disks": ["controller"]},
            },
            "minItems": 1,
        },
    },
    "required": ["logical_disks"],
    "additionalProperties": False,
}


def logical_disk_properties() -> dict[str, str]:
    """Each property a logical disk may have, with its description (as Ironic derives them)."""
    properties = SCHEMA["properties"]["logical_disks"]["items"]["properties"]
    return {name: spec["description"] for name, spec in properties.items()}


def configuration_error(raid_config: Any) -> str | None:
    """Ironic's text of what is wrong with ``raid_config``, or None when the schema takes it
    and it names at most one root volume."""
    import jsonschema  # here, not at start: as services/common/validation.py, for memory

    try:
        jsonschema.validate(raid_config, SCHEMA)
    except jsonschema.ValidationError as exc:
        return f"RAID config validation error: {exc.message}"
    roots = root_volumes(raid_config)
    if len(roots) > 1:
        return (f"Raid config cannot have more than one root volume. {len(roots)} root "
                f"volumes were specified")
    return None


def root_volumes(raid_config: dict[str, Any]) -> list[dict[str, Any]]:
    return [disk for disk in raid_config.get("logical_disks") or []
            if isinstance(disk, dict) and disk.get("is_root_volume")]


def filtered(node_uuid: str, target: dict[str, Any], create_root_volume: bool,
             create_nonroot_volumes: bool) -> list[dict[str, Any]]:
    """The logical disks of ``target`` a create step makes (Ironic's
    ``filter_target_raid_config``); ValueError with Ironic's text when none is left."""
    if not target:
        raise ValueError(f"Node {node_uuid} has no target RAID configuration.")
    disks = [dict(disk) for disk in target.get("logical_disks") or []]
    skipped = []
    if not create_root_volume:
        disks = [disk for disk in disks if not disk.get("is_root_volume")]
        skipped.append("skipping root volume")
    if not create_nonroot_volumes:
        disks = [disk for disk in disks if disk.get("is_root_volume")]
        skipped.append("skipping non-root volumes")
    if not disks:
        raise ValueError(f"Node {node_uuid} has empty target RAID configuration after "
                         f"{' and '.join(skipped)}.")
    return disks
