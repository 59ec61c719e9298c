"""Applies services/api/policy.py to each /v1 request before its endpoint runs.

One FastAPI dependency on every router (services/api/app.py): it finds the rule of the route
(its method and path template, services/api/policy_routes.py), the object it is checked on
(a node's owner and lessee; a port's, port group's or volume's node's; an allocation's owner)
and answers as Ironic's ``check_*_policy_and_retrieve`` do: an object the caller may not even
see is a 404 (``baremetal:node:get``, ``baremetal:allocation:get`` first), a visible one whose
action the caller may not take is a 403. A list the caller may not see whole is limited to its
project's share (``project_filter``, read by the list endpoints); another project's is a 403.
Runbooks are Ironic's RunbooksController's: no concealment (another project's private runbook
is a 403), a public one readable by anyone, a project's manager creating one for its project.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from services.api import policy, policy_patches, policy_steps
from services.api.auth import PUBLIC_PATHS, PUBLIC_PREFIXES
from services.api.policy_lookup import Found, lookup, lookup_body_node
from services.api.policy_routes import ALLOCATION, LISTS, NODE, ROUTES, RUNBOOK, ListRoute
from services.common.exceptions import Conflict, Forbidden, Invalid

PROJECT_FILTER = "policy_project"
FORCED_OWNER = "policy_owner"
_READS = ("GET", "HEAD")


def project_filter(request: Request) -> str | None:
    """The project whose share a list is limited to (the nodes it owns or leases, the
    allocations it owns); None: all of them."""
    value: str | None = request.scope.get("state", {}).get(PROJECT_FILTER)
    return value


def forced_owner(request: Request) -> str | None:
    """The owner a project's caller gets for the node or allocation it creates; None: as the
    body says."""
    value: str | None = request.scope.get("state", {}).get(FORCED_OWNER)
    return value


async def enforce_policy(request: Request) -> None:
    path = request.scope["path"]
    if not path.startswith("/v1/") or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return
    credentials = policy.caller(request)
    template: str = getattr(request.scope.get("route"), "path", path)
    method = "GET" if request.method == "HEAD" else request.method
    if template.startswith("/v1/runbooks") and not _runbooks_spoken(request, template):
        return  # the endpoint's 404 or 405 comes first in Ironic (RunbooksController._route)
    if policy.rules_of(request).unrestricted(credentials):
        if method == "GET" and template in LISTS:
            _limit_to_asked(request, LISTS[template])
        return
    if method == "GET" and template in LISTS:
        await _authorize_list(request, credentials, LISTS[template])
    elif (method, template) == ("POST", "/v1/nodes"):
        await _authorize_node_create(request, credentials)
    elif (method, template) == ("POST", "/v1/allocations"):
        await _authorize_allocation_create(request, credentials)
    elif (method, template) == ("POST", "/v1/runbooks"):
        await _authorize_runbook_create(request, credentials)
    elif (method, template) == ("PATCH", "/v1/runbooks/{ident}"):
        await _authorize_runbook_patch(request, credentials)
    elif (method, template) == ("PATCH", "/v1/nodes/{ident}"):
        found = await _visible(request, credentials, NODE)
        if found is not None:
            await _authorize_node_patch(request, credentials, found)
    elif (method, template) in ROUTES:
        rule, kind = ROUTES[(method, template)]
        if kind is None:
            _require(request, rule, credentials)
        elif kind == RUNBOOK:
            found = await lookup(request, RUNBOOK, request.path_params["ident"])
            public_read = template == "/v1/runbooks/{ident}" and found and found.public
            if found is not None and not public_read:
                _require(request, rule, credentials, found.target)
        elif kind == "body_node":
            body = await request.json()
            ident = body.get("node_uuid") if isinstance(body, dict) else None
            found = await lookup_body_node(request, ident)
            # Ironic checks the rule on no owner before it says the node does not exist
            # (then a 400).
            _require(request, rule, credentials,
                     found.target if found else policy.Target(policy.NODE))
        else:
            found = await _visible(request, credentials, kind)
            if found is not None:
                if rule == "baremetal:node:delete" and not _allowed(request,
                        rule, credentials, found.target):
                    rule = "baremetal:node:delete:self_owned_node"
                _require(request, rule, credentials, found.target)
                if rule == "baremetal:node:set_provision_state":
                    await _authorize_steps(request, credentials, found)
    else:  # /v1/enclume
        _require(request, "enclume:system:read" if method == "GET" else "enclume:system:write",
                 credentials)


async def _visible(request: Request, credentials: policy.Credentials, kind: str
                   ) -> Found | None:
    """The object of the path, or None when there is none (the endpoint says so: 404); one the
    caller may not see is concealed as missing (404), as in Ironic."""
    found = await lookup(request, kind, request.path_params["ident"])
    if found is None:
        return None
    rule = "baremetal:allocation:get" if kind == ALLOCATION else "baremetal:node:get"
    if not _allowed(request, rule, credentials, found.target):
        raise found.missing
    return found


async def _authorize_list(request: Request, credentials: policy.Credentials,
                          route: ListRoute) -> None:
    """Ironic's check_list_policy: the whole list (or the project asked for), or the caller's
    project's share of it; another project's is a 403. A list under a node or port group
    needs that parent visible first (404)."""
    if route.parent is not None:
        found = await _visible(request, credentials, route.parent)
        if found is None:
            return  # the endpoint's 404
    if _allowed(request, f"baremetal:{route.kind}:list_all", credentials):
        _limit_to_asked(request, route)
        return
    asked = request.query_params.get(route.asked) if route.asked else None
    project = credentials.project_id
    if not project or (asked and asked != project):
        raise Forbidden("Access was denied to the following resource: "
                        f"baremetal:{route.kind}:list_all")
    _require(request, f"baremetal:{route.kind}:list", credentials)
    request.scope.setdefault("state", {})[PROJECT_FILTER] = project


def _limit_to_asked(request: Request, route: ListRoute) -> None:
    """Who may see the whole list sees the share of the project it asks for, if any."""
    asked = request.query_params.get(route.asked) if route.asked else None
    if asked:
        request.scope.setdefault("state", {})[PROJECT_FILTER] = asked


async def _authorize_node_create(request: Request, credentials: policy.Credentials) -> None:
    """Ironic's node create: the system's admins (and services), or a project's admin for a
    node its project owns (``forced_owner``, read by the endpoint)."""
    if not _allowed(request, "baremetal:node:create:self_owned_node", credentials):
        _require(request, "baremetal:node:create", credentials)
        return
    if credentials.system:
        return
    body = await request.json()
    asked = body.get("owner") if isinstance(body, dict) else None
    if asked and asked != credentials.project_id:
        raise Invalid("Cannot create a node as a project scoped admin with an owner other "
                      "than your own project.")
    request.scope.setdefault("state", {})[FORCED_OWNER] = credentials.project_id


async def _authorize_allocation_create(request: Request,
                                       credentials: policy.Credentials) -> None:
    """Ironic's AllocationsController.post: a project's member allocates for its project (the
    owner it gets); another owner needs ``create_restricted``."""
    _require(request, "baremetal:allocation:create", credentials)
    if credentials.system:
        return
    body = await request.json()
    asked = body.get("owner") if isinstance(body, dict) else None
    if not _allowed(request, "baremetal:allocation:create_restricted", credentials):
        # Its candidate nodes are its project's share (the endpoint's 400 for the others).
        request.scope.setdefault("state", {})[PROJECT_FILTER] = credentials.project_id
    backfill = body.get("node") if isinstance(body, dict) else None
    found = await lookup_body_node(request, backfill)
    if found is not None and not _allowed(request, "baremetal:node:get", credentials,
                                                found.target):
        raise Invalid(found.missing.message)  # a node it may not see: Ironic's 400
    if not asked:
        request.scope.setdefault("state", {})[FORCED_OWNER] = credentials.project_id
    elif asked != credentials.project_id and not _allowed(request,
            "baremetal:allocation:create_restricted", credentials):
        raise Forbidden(f"Cannot create allocation with an owner Project ID value {asked} not "
                        f"matching the requester Project ID {credentials.project_id}. Policy "
                        "baremetal:allocation:create_restricted is required for this "
                        "capability.")


async def _authorize_node_patch(request: Request, credentials: policy.Credentials,
                                found: Found) -> None:
    """The rules of the patched paths; a new owner for a node in ``active`` also needs
    ``update_owner_provisioned`` (else Ironic's 409)."""
    patch: Any = await request.json()
    operations = patch if isinstance(patch, list) else []
    for rule in policy_patches.node_patch_rules(operations):
        _require(request, rule, credentials, found.target)
    changes_owner = any(isinstance(op, dict) and str(op.get("path", "")).startswith("/owner")
                        for op in operations)
    if changes_owner and found.provision_state == "active" and not _allowed(request,
            "baremetal:node:update_owner_provisioned", credentials, found.target):
        raise Conflict(f'Cannot update owner of node "{found.uuid}" while it is in state '
                       '"active".')


async def _authorize_steps(request: Request, credentials: policy.Credentials,
                           found: Found) -> None:
    """Ironic's NodeStatesController.provision: clean or service steps have their own rules,
    and each step its step-level rule (services/api/policy_steps.py). A runbook's are the
    endpoint's, where it finds the runbook (runbooks.provision_options, as Ironic's
    _handle_runbook)."""
    body: Any = await request.json()
    if not isinstance(body, dict) or body.get("runbook"):
        return
    for steps in ("clean_steps", "service_steps"):
        if body.get(steps):
            _require(request, f"baremetal:node:set_provision_state:{steps}", credentials,
                     found.target)
    policy_steps.authorize(request, [step for steps in ("deploy_steps", "clean_steps",
                                                        "service_steps")
                                     if isinstance(body.get(steps), list)
                                     for step in body[steps]], found.target)


async def _authorize_runbook_create(request: Request,
                                    credentials: policy.Credentials) -> None:
    """Ironic's RunbooksController.post: a project's caller creates a private runbook its
    project owns (``forced_owner``, read by the endpoint)."""
    _require(request, "baremetal:runbook:create", credentials)
    if credentials.system:
        return
    body = await request.json()
    values = body if isinstance(body, dict) else {}
    if values.get("owner") and values["owner"] != credentials.project_id:
        raise Invalid("Cannot create a runbook as a project scoped admin with an owner other "
                      "than your own project.")
    if credentials.project_id and values.get("public"):
        raise Invalid("Cannot create a public runbook as a project scoped admin.")
    request.scope.setdefault("state", {})[FORCED_OWNER] = credentials.project_id


async def _authorize_runbook_patch(request: Request, credentials: policy.Credentials) -> None:
    """Ironic's _authorize_patch_and_get_runbook: ``/owner`` and ``/public`` have their own
    rules, any other path needs ``baremetal:runbook:update``."""
    found = await lookup(request, RUNBOOK, request.path_params["ident"])
    if found is None:
        return  # the endpoint's 404
    patch: Any = await request.json()
    for rule in policy_patches.runbook_patch_rules(patch if isinstance(patch, list) else []):
        _require(request, rule, credentials, found.target)


def _runbooks_spoken(request: Request, template: str) -> bool:
    """Runbooks at the request's version (1.92; their traits 1.112)."""
    from services.api import runbooks  # runbooks reads this module's project_filter

    version = request.scope["state"]["api_version"]
    needed = runbooks.TRAITS_VERSION if "/traits" in template else runbooks.VERSION
    return bool(version >= needed)


def _allowed(request: Request, rule: str, credentials: policy.Credentials,
             target: policy.Target = policy.Target()) -> bool:
    return policy.allowed(rule, credentials, target, policy.rules_of(request))


def require(request: Request, rule: str, target: policy.Target) -> None:
    """``rule`` for the request's caller on ``target``, where an endpoint asks it (as
    Ironic's controller does, after what the endpoint checks first): a 403 when refused."""
    _require(request, rule, policy.caller(request), target)


def _require(request: Request, rule: str, credentials: policy.Credentials,
             target: policy.Target = policy.Target()) -> None:
    if not _allowed(request, rule, credentials, target):
        raise Forbidden(f"Access was denied to the following resource: {rule}")
