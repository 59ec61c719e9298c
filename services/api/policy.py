"""Who may do what on /v1: Ironic's default policy (secure RBAC), the one owner of it.

The checks below are Ironic's ``ironic/common/policy.py`` defaults (Ironic 39), written as
Python predicates under Ironic's names instead of oslo.policy check strings: oslo.policy would
bring oslo.config's global configuration into every strategy (http_basic, users_file, ldap use
this table too) for what is one table of ~40 rules. A caller is ``Credentials`` (Keystone's
roles and scope, or what a classroom role maps to, ``credentials_of``); a target is the node's
``owner`` and ``lessee`` (a port's are its node's). Keystone expands implied roles (admin
implies member implies reader) in the token, and the classroom mapping gives the same sets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from services.common.identity import Identity

# Ironic's [DEFAULT]service_project_name: the project of rule:service_role.
SERVICE_PROJECT = "service"


@dataclass(frozen=True)
class Credentials:
    roles: frozenset[str]
    system: bool = False  # system_scope:all
    project_id: str | None = None
    project_name: str | None = None


@dataclass(frozen=True)
class Target:
    owner: str | None = None
    lessee: str | None = None


Check = Callable[[Credentials, Target], bool]


def _any(*checks: Check) -> Check:
    return lambda c, t: any(check(c, t) for check in checks)


def _role(name: str, *, system: bool = False, of: str | None = None) -> Check:
    """``role:name`` [and system_scope:all] [and project_id:%(node.<of>)s]."""
    def check(c: Credentials, t: Target) -> bool:
        if name not in c.roles or (system and not c.system):
            return False
        if of is None:
            return True
        project = getattr(t, of)
        return project is not None and project == c.project_id
    return check


SERVICE_ROLE: Check = lambda c, t: "service" in c.roles and c.project_name == SERVICE_PROJECT  # noqa: E731
SYSTEM_ADMIN = _role("admin", system=True)
SYSTEM_MEMBER = _any(_role("member", system=True), SERVICE_ROLE)
SYSTEM_READER = _any(_role("reader", system=True), _role("service", system=True), SERVICE_ROLE)
SYSTEM_SERVICE = _role("service", system=True)
PROJECT_SERVICE = _role("service", of="owner")
PROJECT_MEMBER = _any(_role("member", of="owner"), _role("member", of="lessee"))
PROJECT_READER = _any(_role("reader", of="owner"), _role("reader", of="lessee"))
OWNER_ADMIN = _role("admin", of="owner")
OWNER_MANAGER = _role("manager", of="owner")
OWNER_MEMBER = _role("member", of="owner")
OWNER_READER = _role("reader", of="owner")
LESSEE_ADMIN = _role("admin", of="lessee")
LESSEE_MANAGER = _role("manager", of="lessee")

SYSTEM_OR_PROJECT_MEMBER = _any(SYSTEM_MEMBER, PROJECT_MEMBER, SYSTEM_SERVICE)
SYSTEM_OR_PROJECT_READER = _any(SYSTEM_READER, PROJECT_READER, PROJECT_SERVICE)
SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN = _any(
    SYSTEM_MEMBER, SYSTEM_SERVICE, OWNER_MEMBER, LESSEE_ADMIN, LESSEE_MANAGER, PROJECT_SERVICE)
SYSTEM_ADMIN_OR_OWNER_ADMIN = _any(
    SYSTEM_ADMIN, SYSTEM_SERVICE, OWNER_ADMIN, OWNER_MANAGER, PROJECT_SERVICE)
SYSTEM_MEMBER_OR_OWNER_ADMIN = _any(
    SYSTEM_MEMBER, SYSTEM_SERVICE, OWNER_ADMIN, OWNER_MANAGER, PROJECT_SERVICE)
SYSTEM_MEMBER_OR_OWNER_MEMBER = _any(SYSTEM_MEMBER, SYSTEM_SERVICE, OWNER_MEMBER, PROJECT_SERVICE)
SYSTEM_OR_OWNER_READER = _any(SYSTEM_READER, SYSTEM_SERVICE, OWNER_READER, PROJECT_SERVICE)
API_READER = _any(_role("reader"), _role("service"))

RULES: dict[str, Check] = {
    "baremetal:node:create": _any(SYSTEM_ADMIN, SYSTEM_SERVICE),
    # Ironic's [api]project_admin_can_manage_own_nodes (on by default): a project's admin
    # creates nodes owned by its project and deletes them.
    "baremetal:node:create:self_owned_node": _any(_role("admin"), _role("service")),
    "baremetal:node:delete:self_owned_node": OWNER_ADMIN,
    "baremetal:node:list": API_READER,
    "baremetal:node:list_all": SYSTEM_READER,
    "baremetal:node:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:get:last_error": SYSTEM_OR_OWNER_READER,
    "baremetal:node:update": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:update_extra": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:update_instance_info": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:update_owner_provisioned": SYSTEM_ADMIN,
    "baremetal:node:update:driver_info": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:properties": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:chassis_uuid": SYSTEM_ADMIN,
    "baremetal:node:update:instance_uuid": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:lessee": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:owner": SYSTEM_MEMBER,
    "baremetal:node:update:driver_interfaces": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:update:network_data": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:conductor_group": SYSTEM_MEMBER,
    "baremetal:node:update:name": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:retired": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:shard": SYSTEM_ADMIN,
    "baremetal:node:update:parent_node": SYSTEM_MEMBER,
    "baremetal:node:update:disable_power_off": SYSTEM_ADMIN,
    "baremetal:node:disable_cleaning": SYSTEM_ADMIN,
    "baremetal:node:delete": SYSTEM_ADMIN,
    "baremetal:node:set_power_state": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:set_provision_state": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:vif:attach": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:vif:detach": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:vmedia:attach": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:vmedia:detach": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:traits:set": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:traits:delete": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:port:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:port:list": API_READER,
    "baremetal:port:list_all": SYSTEM_READER,
    "baremetal:port:create": SYSTEM_ADMIN_OR_OWNER_ADMIN,
    "baremetal:port:delete": SYSTEM_ADMIN_OR_OWNER_ADMIN,
    "baremetal:port:update": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    # The rest of /v1 (chassis, drivers, conductors, port groups, allocations, volumes...):
    # the system's readers read it and its members change it (Ironic's owner rules of port
    # groups, allocations and volume targets are not built yet: docs/architecture.md).
    "enclume:system:read": SYSTEM_READER,
    "enclume:system:write": SYSTEM_MEMBER,
}

# Ironic's NodesController._authorize_patch_and_get_node: the rule of each patched path.
_PATCH_RULES = (
    ("/instance_info", "baremetal:node:update_instance_info"),
    ("/extra", "baremetal:node:update_extra"),
    ("/driver_info", "baremetal:node:update:driver_info"),
    ("/properties", "baremetal:node:update:properties"),
    ("/chassis_uuid", "baremetal:node:update:chassis_uuid"),
    ("/instance_uuid", "baremetal:node:update:instance_uuid"),
    ("/instance_name", "baremetal:node:update_instance_info"),
    ("/lessee", "baremetal:node:update:lessee"),
    ("/owner", "baremetal:node:update:owner"),
    ("/driver", "baremetal:node:update:driver_interfaces"),
    ("/network_data", "baremetal:node:update:network_data"),
    ("/conductor_group", "baremetal:node:update:conductor_group"),
    ("/name", "baremetal:node:update:name"),
    ("/retired", "baremetal:node:update:retired"),
    ("/shard", "baremetal:node:update:shard"),
    ("/parent_node", "baremetal:node:update:parent_node"),
    ("/disable_power_off", "baremetal:node:update:disable_power_off"),
)
_FALSE = ("false", "0", "no", "off", "f", "n")


def allowed(rule: str, credentials: Credentials, target: Target = Target()) -> bool:
    return RULES[rule](credentials, target)


def unrestricted(credentials: Credentials) -> bool:
    """Every rule allows the caller whatever the target (a system admin): nothing to look up."""
    return all(check(credentials, Target()) for check in RULES.values())


def node_patch_rules(patch: Iterable[Any]) -> list[str]:
    """The rules a node PATCH needs, as Ironic picks them from the patched paths."""
    rules: list[str] = []
    generic = False
    for operation in patch:
        path = str(operation.get("path", "")) if isinstance(operation, dict) else ""
        rule = next((name for prefix, name in _PATCH_RULES if path.startswith(prefix)), None)
        if rule is None and path.endswith("_interface"):
            rule = "baremetal:node:update:driver_interfaces"
        if rule is None and path.startswith("/automated_clean") and (
                str(operation.get("value")).lower() in _FALSE):
            rule = "baremetal:node:disable_cleaning"
        if rule is None:
            generic = True
        else:
            rules.append(rule)
    if generic or not rules:
        rules.append("baremetal:node:update")
    return rules


def credentials_of(identity: Identity | None) -> Credentials:
    """A caller's credentials: Keystone's as the token holds them, else the classroom roles
    mapped (admin and operator: system admin, as Ironic's personas have it: operators enroll,
    run and delete machines; service: Ironic's service role; no identity, i.e. noauth: system
    admin)."""
    if identity is None:
        return _SYSTEM_ADMIN
    if identity.keystone is not None:
        scope = identity.keystone
        return Credentials(scope.roles, scope.system, scope.project_id, scope.project_name)
    roles: set[str] = set()
    if {"admin", "operator"} & set(identity.roles):
        roles |= {"admin", "member", "reader"}
    if "service" in identity.roles:
        roles.add("service")
    service = "service" in identity.roles
    return Credentials(frozenset(roles), system=bool(roles),
                       project_name=SERVICE_PROJECT if service else None)


_SYSTEM_ADMIN = Credentials(frozenset({"admin", "member", "reader"}), system=True)
