"""Applies services/api/policy.py to each /v1 request before its endpoint runs.

One FastAPI dependency on every router (services/api/app.py): it finds the rule of the route
(its method and path template), the target (the node's owner and lessee, a port's node's) and
answers as Ironic does: a node or port the caller may not even see is a 404 (Ironic's
``check_node_policy_and_retrieve`` checks ``baremetal:node:get`` first), a visible one whose
action the caller may not take is a 403. A list that the caller may not see whole is filtered
to the nodes its project owns or leases (``project_filter``, read by the list endpoints).
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import Request
from sqlalchemy import select

from services.api import policy
from services.api.auth import PUBLIC_PATHS, PUBLIC_PREFIXES
from services.api.deps import find_node
from services.common.db import Database
from services.common.exceptions import Forbidden, Invalid, NodeNotFound, NotFound
from services.common.models import Node, Port
from services.common.validation import is_uuid

PROJECT_FILTER = "policy_project"
FORCED_OWNER = "policy_owner"
_LISTS = {"/v1/nodes": "node", "/v1/nodes/detail": "node", "/v1/ports": "port",
          "/v1/ports/detail": "port", "/v1/chassis/{ident}/nodes": "node",
          "/v1/chassis/{ident}/nodes/detail": "node"}
_NODE_ACTIONS = {
    ("DELETE", "/v1/nodes/{ident}"): "baremetal:node:delete",
    ("PUT", "/v1/nodes/{ident}/states/power"): "baremetal:node:set_power_state",
    ("PUT", "/v1/nodes/{ident}/states/provision"): "baremetal:node:set_provision_state",
    ("POST", "/v1/nodes/{ident}/vifs"): "baremetal:node:vif:attach",
    ("DELETE", "/v1/nodes/{ident}/vifs/{vif_id}"): "baremetal:node:vif:detach",
    ("POST", "/v1/nodes/{ident}/vmedia"): "baremetal:node:vmedia:attach",
    ("DELETE", "/v1/nodes/{ident}/vmedia"): "baremetal:node:vmedia:detach",
    ("PUT", "/v1/nodes/{ident}/traits"): "baremetal:node:traits:set",
    ("PUT", "/v1/nodes/{ident}/traits/{trait}"): "baremetal:node:traits:set",
    ("DELETE", "/v1/nodes/{ident}/traits"): "baremetal:node:traits:delete",
    ("DELETE", "/v1/nodes/{ident}/traits/{trait}"): "baremetal:node:traits:delete",
}
_PORT_ACTIONS = {"GET": "baremetal:port:get", "PATCH": "baremetal:port:update",
                 "DELETE": "baremetal:port:delete"}
_READS = ("GET", "HEAD")


def project_filter(request: Request) -> str | None:
    """The project whose nodes (owned or leased) a list is limited to; None: all of them."""
    value: str | None = request.scope.get("state", {}).get(PROJECT_FILTER)
    return value


async def enforce_policy(request: Request) -> None:
    path = request.scope["path"]
    if not path.startswith("/v1/") or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return
    credentials = policy.credentials_of(request.scope.get("state", {}).get("identity"))
    if policy.unrestricted(credentials):
        return
    route = request.scope.get("route")
    template: str = getattr(route, "path", path)
    method = request.method
    params = request.path_params
    if method in _READS and template in _LISTS:
        _limit_list(request, credentials, _LISTS[template])
        if template.startswith("/v1/chassis/"):
            _require("enclume:system:read", credentials)
    elif template == "/v1/nodes":
        await _authorize_create(request, credentials)
    elif template.startswith("/v1/nodes/{ident}"):
        target = await _node_target(request, params["ident"])
        if target is None:
            return  # no such node: the endpoint says so (404), as Ironic does first
        _require_visible(credentials, target, NodeNotFound(params["ident"]))
        for rule in await _node_rules(request, method, template):
            if rule == "baremetal:node:delete" and not policy.allowed(rule, credentials, target):
                rule = "baremetal:node:delete:self_owned_node"
            _require(rule, credentials, target)
        if template.startswith("/v1/nodes/{ident}/ports") and method in _READS:
            _limit_list(request, credentials, "port")
    elif template == "/v1/ports/{ident}":
        target = await _port_target(request, params["ident"])
        if target is None:
            return  # no such port: the endpoint's 404
        _require_visible(credentials, target, NotFound(f"Port {params['ident']} could not be "
                                                        "found."))
        _require(_PORT_ACTIONS.get(method, "enclume:system:write"), credentials, target)
    elif template == "/v1/ports" and method == "POST":
        body = await request.json()
        ident = body.get("node_uuid") if isinstance(body, dict) else None
        target = await _node_target(request, ident) if isinstance(ident, str) else None
        if target is not None:  # no such node: the endpoint's 400
            _require("baremetal:port:create", credentials, target)
    else:
        _require("enclume:system:read" if method in _READS else "enclume:system:write",
                 credentials)


async def _authorize_create(request: Request, credentials: policy.Credentials) -> None:
    """Ironic's node create: the system's admins (and services), or a project's admin for a
    node its project owns (``forced_owner``, read by the endpoint)."""
    if not policy.allowed("baremetal:node:create:self_owned_node", credentials):
        _require("baremetal:node:create", credentials)
        return
    if credentials.system:
        return
    body = await request.json()
    asked = body.get("owner") if isinstance(body, dict) else None
    if asked and asked != credentials.project_id:
        raise Invalid("Cannot create a node as a project scoped admin with an owner other "
                      "than your own project.")
    request.scope.setdefault("state", {})[FORCED_OWNER] = credentials.project_id


def forced_owner(request: Request) -> str | None:
    """The owner a project's admin gets for the node it creates; None: as the body says."""
    value: str | None = request.scope.get("state", {}).get(FORCED_OWNER)
    return value


async def _node_rules(request: Request, method: str, template: str) -> list[str]:
    if method in _READS:
        return []
    if template == "/v1/nodes/{ident}" and method == "PATCH":
        patch = await request.json()
        return policy.node_patch_rules(patch if isinstance(patch, list) else [])
    return [_NODE_ACTIONS.get((method, template), "enclume:system:write")]


def _require(rule: str, credentials: policy.Credentials,
             target: policy.Target = policy.Target()) -> None:
    if not policy.allowed(rule, credentials, target):
        raise Forbidden(f"Access was denied to the following resource: {rule}")


def _require_visible(credentials: policy.Credentials, target: policy.Target,
                     missing: NotFound) -> None:
    """A node (or a port's node) the caller may not see is concealed: 404, as in Ironic."""
    if not policy.allowed("baremetal:node:get", credentials, target):
        raise missing


def _limit_list(request: Request, credentials: policy.Credentials, kind: str) -> None:
    """Ironic's check_list_policy: the whole list (or the ``project`` asked for), or the
    caller's project's share of it; another project's is a 403."""
    asked = request.query_params.get("project")
    if policy.allowed(f"baremetal:{kind}:list_all", credentials):
        if asked:
            request.scope.setdefault("state", {})[PROJECT_FILTER] = asked
        return
    project = credentials.project_id
    if not project or (asked and asked != project):
        raise Forbidden(f"Access was denied to the following resource: baremetal:{kind}:list_all")
    _require(f"baremetal:{kind}:list", credentials)
    request.scope.setdefault("state", {})[PROJECT_FILTER] = project


async def _node_target(request: Request, ident: str) -> policy.Target | None:
    """The node's owner and lessee; None when there is no such node (the endpoint says so)."""
    db: Database = request.app.state.db
    version = request.scope["state"]["api_version"]

    def lookup() -> policy.Target | None:
        with db.session() as session:
            try:
                node = find_node(session, ident, version)
            except NotFound:
                return None
            return policy.Target(node.owner, node.lessee)

    return await to_thread.run_sync(lookup)


async def _port_target(request: Request, ident: str) -> policy.Target | None:
    db: Database = request.app.state.db

    def lookup() -> policy.Target | None:
        if not is_uuid(ident):
            return None
        with db.session() as session:
            row: Any = session.execute(
                select(Node.owner, Node.lessee).join(Port, Port.node_id == Node.id)
                .where(Port.uuid == ident.lower())).first()
            return policy.Target(row.owner, row.lessee) if row else None

    return await to_thread.run_sync(lookup)
