"""How resources look through the API at a given microversion.

A field appears only from the microversion that introduced it in Ironic, so a client that asked
for an older version sees the documents it was written for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from services.api.node_redaction import redact
from services.api.versions import Version
from services.common.models import Allocation, Chassis, Conductor, Node, Port, Portgroup
from services.common.secrets import mask

NODE_FIELD_VERSIONS: dict[str, Version] = {
    "uuid": (1, 1), "instance_uuid": (1, 1), "maintenance": (1, 1), "power_state": (1, 1),
    "provision_state": (1, 1), "chassis_uuid": (1, 1), "console_enabled": (1, 1),
    "created_at": (1, 1), "driver": (1, 1), "driver_info": (1, 1),
    "driver_internal_info": (1, 1), "extra": (1, 1), "instance_info": (1, 1),
    "last_error": (1, 1), "maintenance_reason": (1, 1), "properties": (1, 1),
    "provision_updated_at": (1, 1), "reservation": (1, 1), "target_power_state": (1, 1),
    "target_provision_state": (1, 1), "updated_at": (1, 1), "links": (1, 1), "ports": (1, 1),
    "states": (1, 1), "name": (1, 5), "inspection_started_at": (1, 6),
    "inspection_finished_at": (1, 6), "clean_step": (1, 7), "raid_config": (1, 12),
    "target_raid_config": (1, 12), "network_interface": (1, 20), "resource_class": (1, 21),
    "portgroups": (1, 24), "boot_interface": (1, 31), "console_interface": (1, 31),
    "deploy_interface": (1, 31), "inspect_interface": (1, 31), "management_interface": (1, 31),
    "power_interface": (1, 31), "raid_interface": (1, 31), "vendor_interface": (1, 31),
    "storage_interface": (1, 33), "volume": (1, 32), "traits": (1, 37),
    "rescue_interface": (1, 38), "bios_interface": (1, 40), "fault": (1, 42),
    "deploy_step": (1, 44), "conductor_group": (1, 46), "automated_clean": (1, 47),
    "protected": (1, 48), "protected_reason": (1, 48), "conductor": (1, 49), "owner": (1, 50),
    "description": (1, 51), "allocation_uuid": (1, 52), "retired": (1, 61),
    "retired_reason": (1, 61), "lessee": (1, 65), "network_data": (1, 66),
    "boot_mode": (1, 75), "secure_boot": (1, 75), "shard": (1, 82), "parent_node": (1, 83),
    "firmware_interface": (1, 86), "service_step": (1, 87),
    "disable_power_off": (1, 95), "instance_name": (1, 104), "health": (1, 109),
}
NODE_LIST_FIELDS = ("uuid", "instance_uuid", "maintenance", "power_state", "provision_state",
                    "name", "links")
NODE_STATES_FIELDS = ("console_enabled", "last_error", "power_state", "provision_state",
                      "provision_updated_at", "raid_config", "target_power_state",
                      "target_provision_state", "target_raid_config", "boot_mode",
                      "secure_boot")

PORT_FIELD_VERSIONS: dict[str, Version] = {
    "uuid": (1, 1), "address": (1, 1), "node_uuid": (1, 1), "extra": (1, 1),
    "created_at": (1, 1), "updated_at": (1, 1), "links": (1, 1), "internal_info": (1, 18),
    "local_link_connection": (1, 19), "pxe_enabled": (1, 19), "portgroup_uuid": (1, 24),
    "physical_network": (1, 34), "is_smartnic": (1, 53), "name": (1, 88),
    "description": (1, 97), "vendor": (1, 100), "category": (1, 101),
    "available_for_dynamic_portgroup": (1, 111),
}
PORT_LIST_FIELDS = ("uuid", "address", "links")
# OVN VTEP switches in a port's local_link_connection: added by API 1.90, removed by 1.105
# (Ironic's allow_ovn_vtep_version). Outside that range a connection that names them is shown
# empty, and a port created with them is refused (406), as Ironic does.
VTEP_KEYS = ("vtep-logical-switch", "vtep-physical-switch")
VTEP_VERSION: Version = (1, 90)
VTEP_REMOVED_VERSION: Version = (1, 105)


def vtep_allowed(version: Version) -> bool:
    return VTEP_VERSION <= version < VTEP_REMOVED_VERSION

PORTGROUP_FIELD_VERSIONS: dict[str, Version] = {
    name: (1, 23) for name in (
        "uuid", "name", "address", "node_uuid", "standalone_ports_supported", "internal_info",
        "extra", "created_at", "updated_at", "links")
} | {"ports": (1, 24), "mode": (1, 26), "properties": (1, 26),
     "physical_network": (1, 102), "category": (1, 103), "dynamic_portgroup": (1, 111)}
PORTGROUP_LIST_FIELDS = ("uuid", "address", "name", "links")

CHASSIS_FIELD_VERSIONS: dict[str, Version] = {
    name: (1, 1) for name in ("uuid", "description", "extra", "created_at", "updated_at",
                              "links", "nodes")
}
CHASSIS_LIST_FIELDS = ("uuid", "description", "links")

ALLOCATION_FIELD_VERSIONS: dict[str, Version] = {
    name: (1, 52) for name in (
        "uuid", "name", "node_uuid", "state", "last_error", "resource_class", "traits",
        "candidate_nodes", "extra", "created_at", "updated_at", "links")
} | {"owner": (1, 60)}
ALLOCATION_LIST_FIELDS = tuple(ALLOCATION_FIELD_VERSIONS)

CONDUCTOR_FIELD_VERSIONS: dict[str, Version] = {
    name: (1, 49) for name in ("hostname", "conductor_group", "alive", "drivers", "created_at",
                               "updated_at", "links")
}
CONDUCTOR_LIST_FIELDS = ("hostname", "conductor_group", "alive", "links")


def visible_fields(table: dict[str, Version], version: Version) -> list[str]:
    return [name for name, since in table.items() if since <= version]


def base_url(request: Request) -> str:
    public = request.app.state.settings.api.public_url
    return (public or str(request.base_url)).rstrip("/")


def links(request: Request, resource: str, ident: str) -> list[dict[str, str]]:
    base = base_url(request)
    return [{"href": f"{base}/v1/{resource}/{ident}", "rel": "self"},
            {"href": f"{base}/{resource}/{ident}", "rel": "bookmark"}]


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 with its UTC offset, as Ironic shows it (SQLite gives naive UTC values)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _select(document: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {name: document[name] for name in fields if name in document}


def sub_links(request: Request, resource: str, ident: str, sub: str) -> list[dict[str, str]]:
    """The links to a resource's sub-collection (a node's ports, a chassis' nodes...)."""
    return links(request, resource, f"{ident}/{sub}")


def node_document(request: Request, node: Node, fields: list[str],
                  allocation_uuid: str | None = None, conductor: str | None = None,
                  chassis_uuid: str | None = None) -> dict[str, Any]:
    wanted = set(fields)
    document: dict[str, Any] = {}
    for name in fields:
        if name in ("links", "ports", "states", "portgroups", "volume", "chassis_uuid",
                    "allocation_uuid", "conductor"):
            continue
        value = getattr(node, name)
        if isinstance(value, datetime):
            value = timestamp(value)
        document[name] = value
    if "driver_info" in wanted:
        document["driver_info"] = mask(node.driver_info)
    if "instance_info" in wanted:
        document["instance_info"] = mask(node.instance_info)
    if "driver_internal_info" in wanted:
        document["driver_internal_info"] = mask(node.driver_internal_info)
    if "chassis_uuid" in wanted:
        document["chassis_uuid"] = chassis_uuid
    if "allocation_uuid" in wanted:
        document["allocation_uuid"] = allocation_uuid
    if "conductor" in wanted:
        document["conductor"] = conductor
    if "links" in wanted:
        document["links"] = links(request, "nodes", node.uuid)
    for sub in ("ports", "states", "portgroups", "volume"):
        if sub in wanted:
            document[sub] = sub_links(request, "nodes", node.uuid, sub)
    redact(request, node, document)  # what a project's caller may not read (Ironic's)
    return document


def _local_link(request: Request, link: dict[str, Any]) -> dict[str, Any]:
    version = getattr(request.state, "api_version", VTEP_VERSION)
    if not vtep_allowed(version) and any(key in link for key in VTEP_KEYS):
        return {}
    return link


def port_document(request: Request, port: Port, node_uuid: str, fields: list[str],
                  portgroup_uuid: str | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "uuid": port.uuid, "address": port.address, "node_uuid": node_uuid,
        "extra": port.extra, "created_at": timestamp(port.created_at),
        "updated_at": timestamp(port.updated_at), "internal_info": mask(port.internal_info),
        "local_link_connection": _local_link(request, port.local_link_connection),
        "pxe_enabled": port.pxe_enabled,
        "portgroup_uuid": portgroup_uuid, "physical_network": port.physical_network,
        "is_smartnic": port.is_smartnic, "name": port.name, "description": port.description,
        "vendor": port.vendor, "category": port.category,
        "available_for_dynamic_portgroup": port.available_for_dynamic_portgroup,
    }
    if "links" in fields:
        values["links"] = links(request, "ports", port.uuid)
    return _select(values, fields)


def portgroup_document(request: Request, portgroup: Portgroup, node_uuid: str,
                       fields: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "uuid": portgroup.uuid, "name": portgroup.name, "address": portgroup.address,
        "node_uuid": node_uuid, "standalone_ports_supported": portgroup.standalone_ports_supported,
        "internal_info": mask(portgroup.internal_info), "extra": portgroup.extra,
        "mode": portgroup.mode, "properties": portgroup.properties,
        "physical_network": portgroup.physical_network, "category": portgroup.category,
        "dynamic_portgroup": portgroup.dynamic_portgroup,
        "created_at": timestamp(portgroup.created_at),
        "updated_at": timestamp(portgroup.updated_at),
    }
    if "links" in fields:
        values["links"] = links(request, "portgroups", portgroup.uuid)
    if "ports" in fields:
        values["ports"] = sub_links(request, "portgroups", portgroup.uuid, "ports")
    return _select(values, fields)


def chassis_document(request: Request, chassis: Chassis, fields: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "uuid": chassis.uuid, "description": chassis.description, "extra": chassis.extra,
        "created_at": timestamp(chassis.created_at), "updated_at": timestamp(chassis.updated_at),
    }
    if "links" in fields:
        values["links"] = links(request, "chassis", chassis.uuid)
    if "nodes" in fields:
        values["nodes"] = sub_links(request, "chassis", chassis.uuid, "nodes")
    return _select(values, fields)


def allocation_document(request: Request, allocation: Allocation, node_uuid: str | None,
                        fields: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "uuid": allocation.uuid, "name": allocation.name, "node_uuid": node_uuid,
        "state": allocation.state, "last_error": allocation.last_error,
        "resource_class": allocation.resource_class, "traits": allocation.traits,
        "candidate_nodes": allocation.candidate_nodes, "extra": allocation.extra,
        "owner": allocation.owner, "created_at": timestamp(allocation.created_at),
        "updated_at": timestamp(allocation.updated_at),
    }
    if "links" in fields:
        values["links"] = links(request, "allocations", allocation.uuid)
    return _select(values, fields)


def conductor_document(request: Request, conductor: Conductor, alive: bool,
                       fields: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "hostname": conductor.hostname, "conductor_group": conductor.conductor_group,
        "alive": alive, "drivers": conductor.hardware_types,
        "created_at": timestamp(conductor.created_at),
        "updated_at": timestamp(conductor.updated_at),
    }
    if "links" in fields:
        values["links"] = links(request, "conductors", conductor.hostname)
    return _select(values, fields)
