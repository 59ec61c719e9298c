"""The OpenAPI document of the Ironic v1 API as Enclume serves it (``GET /openapi.json``).

FastAPI's own document knows only the Python signatures (untyped ``Body(...)``, query
parameters read from ``request.query_params``, a 422 that is never answered). This module
replaces each operation's parameters, request body and responses with what the route really
takes and answers, from the table below; the routes themselves are not changed by it and do
not read it. A route missing from the table (or a table entry without its route) makes the
document fail to build, so the two cannot drift apart silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.api import (
    allocations,
    auth,
    chassis,
    collection,
    conductors,
    deploy_templates,
    nodes,
    openapi_deploy_templates,
    openapi_newer,
    openapi_volumes,
    portgroups,
    ports,
)
from services.api.openapi_schemas import END, UUID, component_schemas, ref
from services.api.versions import (
    GENERIC_HEADER,
    HEADER,
    MAX_VERSION,
    VERSION_RE,
    format_version,
)

Schema = dict[str, Any]

ERROR_DESCRIPTIONS = {
    400: "Bad input: a malformed body, parameter or version header (thousands of digits, "
         "non-ASCII digits), a value the validation layer refuses, or a lookup without a MAC "
         "address of the node.",
    401: "Missing or wrong credentials of any shape (http_basic), or a heartbeat without "
         "agent token.",
    403: "Refused: a wrong agent token, a heartbeat whose callback host is not the address it "
         "came from, or discovery is off.",
    404: "No such resource, or not served at the requested microversion.",
    405: "Not allowed at the requested microversion.",
    406: "The requested microversion is outside the served range.",
    409: "Conflict: a duplicate name, MAC or UUID, a locked node, a wrong state, a PATCH "
         "that kept losing to concurrent writers (StaleUpdate: read again and retry), or a "
         "heartbeat from another callback URL than its token's first.",
    413: "The request body is larger than ENCLUME_MAX_REQUEST_BODY_BYTES.",
    500: "The node's BMC failed a synchronous call: the driver's error, as in Ironic.",
    503: "No free conductor worker, the node is locked for a moment, or the database gave up "
         "the request's transaction (a deadlock or lock wait; Retry-After): retry.",
}
# Every operation can answer these: the version middleware runs before any route.
ALWAYS = (400, 406)
CONDUCTOR = (409, 503)  # work handed to a conductor: the node may be locked, workers busy
BMC = (*CONDUCTOR, 500)  # a synchronous call to the node's BMC, which may fail


@dataclass(frozen=True)
class Operation:
    status: int  # the success status
    response: str | None = None  # its body's component schema
    body: str | None = None  # the request body's component schema
    body_required: bool = True
    query: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    public: bool = False
    summary: str = ""
    path_names: dict[str, str] = field(default_factory=dict)


LIST = ("fields", "limit", "marker", "sort_dir", "detail")
NODE_LIST = (*LIST, "node_sort_key", *nodes.FILTERS, *nodes.NEWER_FILTERS)
PORT_LIST = (*LIST, "port_sort_key")
IDENT = {"ident": "A node's UUID or name (API 1.5)."}
PORT_IDENT = {"ident": "A port's UUID."}
ALLOCATION_IDENT = {"ident": "An allocation's UUID or name."}
PORTGROUP_IDENT = {"ident": "A port group's UUID or name."}
CHASSIS_IDENT = {"ident": "A chassis' UUID."}
PORTGROUP_LIST = (*LIST, "portgroup_sort_key")
CHASSIS_LIST = (*LIST, "chassis_sort_key")


def _no_detail(query: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(q for q in query if q != "detail")

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("get", "/"): Operation(200, "Versions", public=True, summary="Version discovery"),
    ("get", "/v1"): Operation(200, "Versions", public=True, summary="The v1 document"),
    ("get", "/v1/"): Operation(200, "Versions", public=True, summary="The v1 document"),
    # nodes
    ("get", "/v1/nodes"): Operation(200, "NodeCollection", query=NODE_LIST),
    ("get", "/v1/nodes/detail"): Operation(200, "NodeCollection",
                                           query=tuple(q for q in NODE_LIST if q != "detail")),
    ("post", "/v1/nodes"): Operation(201, "Node", body="NodeCreate", errors=(409,)),
    ("get", "/v1/nodes/{ident}"): Operation(200, "Node", query=("fields",), errors=(404,),
                                            path_names=IDENT),
    ("patch", "/v1/nodes/{ident}"): Operation(200, "Node", body="NodePatch",
                                              errors=(404, *CONDUCTOR), path_names=IDENT),
    ("delete", "/v1/nodes/{ident}"): Operation(204, errors=(404, *CONDUCTOR), path_names=IDENT),
    ("get", "/v1/nodes/{ident}/states"): Operation(200, "Node", errors=(404,),
                                                   path_names=IDENT),
    ("put", "/v1/nodes/{ident}/states/provision"): Operation(
        202, body="ProvisionStateChange", errors=(404, *CONDUCTOR), path_names=IDENT),
    ("put", "/v1/nodes/{ident}/states/power"): Operation(
        202, body="PowerStateChange", errors=(404, *CONDUCTOR), path_names=IDENT),
    ("get", "/v1/nodes/{ident}/states/console"): Operation(
        200, errors=(404, *CONDUCTOR), path_names=IDENT),
    ("put", "/v1/nodes/{ident}/states/console"): Operation(
        202, body="ConsoleChange", errors=(404, *CONDUCTOR), path_names=IDENT),
    ("put", "/v1/nodes/{ident}/states/raid"): Operation(
        204, body="RaidConfig", errors=(404, *CONDUCTOR), path_names=IDENT),
    ("get", "/v1/nodes/{ident}/management/boot_device"): Operation(
        200, errors=(404, *BMC), path_names=IDENT),
    ("put", "/v1/nodes/{ident}/management/boot_device"): Operation(
        204, body="BootDevice", errors=(404, *BMC), path_names=IDENT),
    ("get", "/v1/nodes/{ident}/management/boot_device/supported"): Operation(
        200, errors=(404, *CONDUCTOR), path_names=IDENT),
    ("put", "/v1/nodes/{ident}/maintenance"): Operation(
        202, body="Maintenance", body_required=False, errors=(404,), path_names=IDENT),
    ("delete", "/v1/nodes/{ident}/maintenance"): Operation(202, errors=(404,),
                                                           path_names=IDENT),
    ("get", "/v1/nodes/{ident}/validate"): Operation(200, errors=(404, *CONDUCTOR),
                                                     path_names=IDENT),
    ("get", "/v1/nodes/{ident}/inventory"): Operation(200, errors=(404,), path_names=IDENT),
    ("get", "/v1/nodes/{ident}/traits"): Operation(200, "Traits", errors=(404,),
                                                   path_names=IDENT),
    ("put", "/v1/nodes/{ident}/traits"): Operation(204, body="Traits",
                                                   errors=(404, *CONDUCTOR), path_names=IDENT),
    ("delete", "/v1/nodes/{ident}/traits"): Operation(204, errors=(404, *CONDUCTOR),
                                                      path_names=IDENT),
    ("put", "/v1/nodes/{ident}/traits/{trait}"): Operation(
        204, errors=(404, *CONDUCTOR),
        path_names=IDENT | {"trait": "A standard trait or CUSTOM_..."}),
    ("delete", "/v1/nodes/{ident}/traits/{trait}"): Operation(
        204, errors=(404, *CONDUCTOR), path_names=IDENT | {"trait": "A trait of the node."}),
    ("get", "/v1/nodes/{ident}/vifs"): Operation(200, "VifCollection", errors=(404, *CONDUCTOR),
                                                 path_names=IDENT),
    ("post", "/v1/nodes/{ident}/vifs"): Operation(204, body="Vif", errors=(404, *CONDUCTOR),
                                                  path_names=IDENT),
    ("delete", "/v1/nodes/{ident}/vifs/{vif_id}"): Operation(
        204, errors=(404, *CONDUCTOR), path_names=IDENT | {"vif_id": "An attached VIF's ID."}),
    ("get", "/v1/nodes/{ident}/history"): Operation(
        200, "HistoryCollection", query=("detail", "limit", "marker", "sort_dir"),
        errors=(404,), path_names=IDENT),
    ("get", "/v1/nodes/{ident}/history/{event_uuid}"): Operation(
        200, "HistoryEvent", errors=(404,),
        path_names=IDENT | {"event_uuid": "A history event's UUID."}),
    ("get", "/v1/nodes/{ident}/bios"): Operation(
        200, "BiosCollection", query=("detail", "fields"), errors=(404,), path_names=IDENT),
    ("get", "/v1/nodes/{ident}/bios/{name}"): Operation(
        200, errors=(404,), path_names=IDENT | {"name": "A BIOS setting's name."}),
    ("get", "/v1/nodes/{ident}/firmware"): Operation(200, "FirmwareCollection", errors=(404,),
                                                     path_names=IDENT),
    ("get", "/v1/nodes/{ident}/allocation"): Operation(200, "Allocation", query=("fields",),
                                                       errors=(404,), path_names=IDENT),
    # ports
    ("get", "/v1/ports"): Operation(200, "PortCollection",
                                    query=(*PORT_LIST, "node", "node_uuid", "address"),
                                    errors=(404,)),
    ("get", "/v1/ports/detail"): Operation(
        200, "PortCollection", query=(*(q for q in PORT_LIST if q != "detail"), "node",
                                      "node_uuid", "address"), errors=(404,)),
    ("post", "/v1/ports"): Operation(201, "Port", body="PortCreate", errors=(404, 409)),
    ("get", "/v1/nodes/{ident}/ports"): Operation(200, "PortCollection", query=PORT_LIST,
                                                  errors=(404,), path_names=IDENT),
    ("get", "/v1/nodes/{ident}/ports/detail"): Operation(
        200, "PortCollection", query=tuple(q for q in PORT_LIST if q != "detail"),
        errors=(404,), path_names=IDENT),
    ("get", "/v1/ports/{ident}"): Operation(200, "Port", query=("fields",), errors=(404,),
                                            path_names=PORT_IDENT),
    ("patch", "/v1/ports/{ident}"): Operation(200, "Port", body="PortPatch",
                                              errors=(404, *CONDUCTOR), path_names=PORT_IDENT),
    ("delete", "/v1/ports/{ident}"): Operation(204, errors=(404, *CONDUCTOR),
                                               path_names=PORT_IDENT),
    # port groups (API 1.23; a node's and a group's sub-collections 1.24)
    ("get", "/v1/portgroups"): Operation(200, "PortgroupCollection",
                                         query=(*PORTGROUP_LIST, "node", "address"),
                                         errors=(404,)),
    ("get", "/v1/portgroups/detail"): Operation(
        200, "PortgroupCollection", query=(*_no_detail(PORTGROUP_LIST), "node", "address"),
        errors=(404,)),
    ("post", "/v1/portgroups"): Operation(201, "Portgroup", body="PortgroupCreate",
                                          errors=(404, 409)),
    ("get", "/v1/portgroups/{ident}"): Operation(200, "Portgroup", query=("fields",),
                                                 errors=(404,), path_names=PORTGROUP_IDENT),
    ("patch", "/v1/portgroups/{ident}"): Operation(
        200, "Portgroup", body="PortgroupPatch", errors=(404, *CONDUCTOR),
        path_names=PORTGROUP_IDENT),
    ("delete", "/v1/portgroups/{ident}"): Operation(204, errors=(404, *CONDUCTOR),
                                                    path_names=PORTGROUP_IDENT),
    ("get", "/v1/portgroups/{ident}/ports"): Operation(
        200, "PortCollection", query=PORT_LIST, errors=(404,), path_names=PORTGROUP_IDENT),
    ("get", "/v1/portgroups/{ident}/ports/detail"): Operation(
        200, "PortCollection", query=_no_detail(PORT_LIST), errors=(404,),
        path_names=PORTGROUP_IDENT),
    ("get", "/v1/nodes/{ident}/portgroups"): Operation(
        200, "PortgroupCollection", query=PORTGROUP_LIST, errors=(404,), path_names=IDENT),
    ("get", "/v1/nodes/{ident}/portgroups/detail"): Operation(
        200, "PortgroupCollection", query=_no_detail(PORTGROUP_LIST), errors=(404,),
        path_names=IDENT),
    # chassis
    ("get", "/v1/chassis"): Operation(200, "ChassisCollection", query=CHASSIS_LIST),
    ("get", "/v1/chassis/detail"): Operation(200, "ChassisCollection",
                                             query=_no_detail(CHASSIS_LIST)),
    ("post", "/v1/chassis"): Operation(201, "Chassis", body="ChassisCreate", errors=(409,)),
    ("get", "/v1/chassis/{ident}"): Operation(200, "Chassis", query=("fields",),
                                              errors=(404,), path_names=CHASSIS_IDENT),
    ("patch", "/v1/chassis/{ident}"): Operation(200, "Chassis", body="ChassisPatch",
                                                errors=(404,), path_names=CHASSIS_IDENT),
    ("delete", "/v1/chassis/{ident}"): Operation(204, errors=(404,),
                                                 path_names=CHASSIS_IDENT),
    ("get", "/v1/chassis/{ident}/nodes"): Operation(
        200, "NodeCollection", query=(*LIST, "node_sort_key"), errors=(404,),
        path_names=CHASSIS_IDENT),
    ("get", "/v1/chassis/{ident}/nodes/detail"): Operation(
        200, "NodeCollection", query=(*_no_detail(LIST), "node_sort_key"), errors=(404,),
        path_names=CHASSIS_IDENT),
    # allocations (API 1.52)
    ("get", "/v1/allocations"): Operation(
        200, "AllocationCollection",
        query=("fields", "limit", "marker", "sort_dir", "allocation_sort_key", "node",
               "resource_class", "state", "owner"), errors=(404,)),
    ("post", "/v1/allocations"): Operation(201, "Allocation", body="AllocationCreate",
                                           errors=(404, 409)),
    ("get", "/v1/allocations/{ident}"): Operation(200, "Allocation", query=("fields",),
                                                  errors=(404,), path_names=ALLOCATION_IDENT),
    ("patch", "/v1/allocations/{ident}"): Operation(
        200, "Allocation", body="AllocationPatch", errors=(404, 405, 409),
        path_names=ALLOCATION_IDENT),
    ("delete", "/v1/allocations/{ident}"): Operation(204, errors=(404, 409),
                                                     path_names=ALLOCATION_IDENT),
    # drivers and conductors
    ("get", "/v1/drivers"): Operation(200, "DriverCollection", query=("type", "detail")),
    ("get", "/v1/drivers/{name}"): Operation(200, "Driver", errors=(404,),
                                             path_names={"name": "A hardware type."}),
    ("get", "/v1/drivers/{name}/properties"): Operation(
        200, errors=(404,), path_names={"name": "A hardware type."}),
    ("get", "/v1/drivers/{name}/raid/logical_disk_properties"): Operation(
        200, errors=(404,), path_names={"name": "A hardware type."}),
    ("get", "/v1/conductors"): Operation(
        200, "ConductorCollection", query=("fields", "limit", "marker", "sort_dir", "detail",
                                           "conductor_sort_key"), errors=(404,)),
    ("get", "/v1/conductors/{hostname}"): Operation(
        200, "Conductor", query=("fields",), errors=(404,),
        path_names={"hostname": "A conductor's hostname."}),
    # the agent's (public, the agent proves itself with its token)
    ("get", "/v1/lookup"): Operation(200, "Lookup", query=("addresses", "node_uuid"),
                                     errors=(404, 409), public=True),
    ("post", "/v1/heartbeat/{node_ident}"): Operation(
        202, body="Heartbeat", errors=(401, 403, 404, 409, 503), public=True,
        path_names={"node_ident": "The node's UUID."}),
    ("post", "/v1/continue_inspection"): Operation(
        202, body="ContinueInspection", errors=(403, 404, 409, 503), public=True,
        summary="An inventory (API 1.84, and 1.1; 404 in between)"),
} | {key: Operation(**values) for key, values in (openapi_volumes.operations()
                                                 | openapi_deploy_templates.operations()
                                                 | openapi_newer.operations()).items()}


def _sort_key(names: set[str]) -> Schema:
    return {"type": "string", "enum": sorted(names)}


TEXT: Schema = {"type": "string"}  # compared with what is stored: no limit of its own
BOOLEAN_WORD = {"type": "string",
                "enum": sorted(collection.TRUE_WORDS) + sorted(collection.FALSE_WORDS)}
QUERY: dict[str, tuple[str, Schema, str]] = {
    # parameter -> (name on the wire, schema, description)
    "fields": ("fields", TEXT, "Comma-separated field names (API 1.8)."),
    "limit": ("limit", {"type": "integer", "minimum": 0},
              "At most this many items (0: the configured maximum page size)."),
    "marker": ("marker", TEXT, "The last item of the previous page (its UUID)."),
    "sort_dir": ("sort_dir", {"type": "string", "enum": ["asc", "desc"]}, ""),
    "detail": ("detail", BOOLEAN_WORD, "Every field (API 1.43); not on /detail."),
    "node_sort_key": ("sort_key", _sort_key(nodes.SORTABLE), ""),
    "port_sort_key": ("sort_key", _sort_key(ports.SORTABLE), ""),
    "portgroup_sort_key": ("sort_key", _sort_key(portgroups.SORTABLE), ""),
    "chassis_sort_key": ("sort_key", _sort_key(chassis.SORTABLE), ""),
    "template_sort_key": ("sort_key", _sort_key(deploy_templates.SORTABLE), ""),
    "chassis_uuid": ("chassis_uuid", UUID, "A chassis' UUID."),
    "allocation_sort_key": ("sort_key", _sort_key(allocations.SORTABLE), ""),
    "conductor_sort_key": ("sort_key", _sort_key(conductors.SORTABLE), ""),
    "maintenance": ("maintenance", BOOLEAN_WORD, ""),
    "associated": ("associated", BOOLEAN_WORD, "Has an instance_uuid."),
    "retired": ("retired", BOOLEAN_WORD, ""),
    "fault": ("fault", TEXT, ""),
    "instance_uuid": ("instance_uuid", UUID, ""),
    "description_contains": ("description_contains", TEXT, ""),
    "shard": ("shard", TEXT, "Comma-separated shards (API 1.82; 406 below)."),
    "sharded": ("sharded", BOOLEAN_WORD, "Has a shard (API 1.82; 406 below)."),
    "include_children": ("include_children", BOOLEAN_WORD, "Child nodes too (API 1.83)."),
    "parent_node": ("parent_node", TEXT, "The children of this node UUID (API 1.83)."),
    "instance_name": ("instance_name", TEXT, "The nodes of this instance name (API 1.104; "
                                             "406 below)."),
    "node": ("node", TEXT, "A node's UUID or name."),
    "node_uuid": ("node_uuid", UUID, "A node's UUID."),
    "address": ("address", TEXT, "A MAC address."),
    "addresses": ("addresses", TEXT, "Comma-separated MAC addresses of the machine: one of "
                                     "the node's is needed."),
    "type": ("type", {"type": "string", "enum": ["classic", "dynamic"]}, ""),
}
VERSION_PATTERN = f"(?:latest|{VERSION_RE.pattern}){END}"


def _query_parameter(key: str) -> Schema:
    name, schema, description = QUERY.get(key, (key, TEXT, ""))
    parameter = {"name": name, "in": "query", "required": False, "schema": schema}
    return parameter | ({"description": description} if description else {})


def _version_headers() -> list[Schema]:
    served = format_version(MAX_VERSION)
    return [
        {"name": "X-OpenStack-Ironic-API-Version", "in": "header", "required": False,
         "schema": {"type": "string", "pattern": f"^{VERSION_PATTERN}", "example": served},
         "description": f"The microversion: 1.N or latest ({served}); none means 1.1."},
        {"name": "OpenStack-API-Version", "in": "header", "required": False,
         "schema": {"type": "string", "pattern": f"^baremetal {VERSION_PATTERN}",
                    "example": f"baremetal {served}"},
         "description": f"The same as 'baremetal 1.N'; {HEADER} wins when both are given."},
    ]


def _error(status: int) -> Schema:
    return {"description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": ref("Error")}}}


def _describe(path: str, operation: Operation, generated: Schema) -> Schema:
    described: Schema = {key: generated[key] for key in ("operationId", "tags")
                         if key in generated}
    described["summary"] = operation.summary or generated.get("summary", "")
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "string", "minLength": 1}, "description": description}
                  for name, description in operation.path_names.items()]
    parameters += [_query_parameter(key) for key in operation.query]
    described["parameters"] = parameters + _version_headers()
    if operation.body:
        described["requestBody"] = {"required": operation.body_required, "content": {
            "application/json": {"schema": ref(operation.body)}}}
    success: Schema = {"description": "Done." if operation.status != 202 else "Accepted."}
    if operation.response:
        success["content"] = {"application/json": {"schema": ref(operation.response)}}
    codes = set(ALWAYS) | set(operation.errors)
    if operation.body:
        codes.add(413)
    if not operation.public and path not in auth.PUBLIC_PATHS:
        codes.add(401)
        described["security"] = [{"http_basic": []}, {}]
    else:
        described["security"] = []
    described["responses"] = {str(operation.status): success} | {
        str(code): _error(code) for code in sorted(codes)}
    return described


def build(app: FastAPI) -> Schema:
    """The document for ``app``; ValueError if its routes and OPERATIONS differ."""
    generated = get_openapi(title="Enclume: OpenStack Ironic v1 API",
                            version=format_version(MAX_VERSION), routes=app.routes,
                            description=__doc__)
    served = {(method, path) for path, methods in generated["paths"].items()
              for method in methods}
    if served != set(OPERATIONS):
        raise ValueError(f"OpenAPI table out of date: routes without an entry "
                         f"{sorted(served - set(OPERATIONS))}, entries without a route "
                         f"{sorted(set(OPERATIONS) - served)}")
    paths: dict[str, Schema] = {}
    for (method, path), operation in OPERATIONS.items():
        paths.setdefault(path, {})[method] = _describe(
            path, operation, generated["paths"][path][method])
    return {
        "openapi": generated["openapi"],
        "info": generated["info"] | {"description": (
            "OpenStack Ironic's v1 REST API as Enclume serves it (docs/api.md): microversions "
            f"1.1 to {format_version(MAX_VERSION)} in the {HEADER} or {GENERIC_HEADER} header. "
            "Every error body is Ironic's {\"error_message\": \"<JSON string>\"}.")},
        "paths": paths,
        "components": {"schemas": component_schemas() | openapi_volumes.schemas()
                       | openapi_deploy_templates.schemas() | openapi_newer.schemas(),
                       "securitySchemes": {"http_basic": {"type": "http", "scheme": "basic"}}},
    }

