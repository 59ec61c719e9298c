"""Who may do what on /v1: Ironic's default policy (secure RBAC), the one owner of it.

The checks below are Ironic's ``ironic/common/policy.py`` defaults (Ironic 39), written as
Python predicates under Ironic's names instead of oslo.policy check strings: oslo.policy would
bring oslo.config's global configuration into every strategy (http_basic, users_file, ldap use
this table too). A caller is ``Credentials`` (Keystone's roles and scope, or what a classroom
role maps to, ``credentials_of``); a target is the node's ``owner`` and ``lessee`` (a port's,
port group's or volume's are its node's; an allocation's or a runbook's is its ``owner``).
Keystone expands implied roles (admin implies manager, member, reader) in the token, and
the classroom mapping gives the same sets. tests/integration/test_policy_matches_ironic.py
asks Ironic's own defaults, loaded with oslo.policy, the same questions for every rule here
and each persona. An operator's policy file changes the table the app holds
(services/api/policy_file.py, ``rules_of``); scopes stay as below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from services.common.identity import Identity

# Ironic's [DEFAULT]service_project_name: the project of rule:service_role.
SERVICE_PROJECT = "service"


@dataclass(frozen=True)
class Credentials:
    roles: frozenset[str]
    system: bool = False  # system_scope:all
    project_id: str | None = None
    project_name: str | None = None
    domain_id: str | None = None  # a domain-scoped token's


@dataclass(frozen=True)
class Target:
    owner: str | None = None
    lessee: str | None = None
    allocation_owner: str | None = None
    runbook_owner: str | None = None


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
        if of == "lessee" and project is None:
            return False  # check_owner_policy leaves node.lessee out: no match
        # node.owner is always there, None too, and oslo.policy compares text: an unowned
        # node's "None" matches a caller without a project, as in Ironic.
        return project == c.project_id
    return check


def _owned(name: str, owner: str) -> Check:
    """``role:name and project_id:%(allocation.owner)s`` (``owner`` "allocation_owner") or
    ``%(runbook.owner)s`` ("runbook_owner"); None matches None, as above."""
    return lambda c, t: name in c.roles and getattr(t, owner) == c.project_id


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
SYSTEM_MEMBER_OR_OWNER_LESSEE_ADMIN = _any(
    SYSTEM_MEMBER, SYSTEM_SERVICE, OWNER_ADMIN, OWNER_MANAGER, LESSEE_ADMIN, LESSEE_MANAGER,
    PROJECT_SERVICE)
ALLOCATION_MEMBER = _any(SYSTEM_MEMBER, _owned("member", "allocation_owner"))
ALLOCATION_READER = _any(SYSTEM_READER, _owned("reader", "allocation_owner"))
ALLOCATION_CREATOR = _any(SYSTEM_MEMBER, _role("member"))
API_READER = _any(_role("reader"), _role("service"))
# Any project's service role, as Ironic's RUNBOOK_* strings have it (not rule:service_role).
RUNBOOK_ADMIN = _any(SYSTEM_MEMBER, _owned("manager", "runbook_owner"), _role("service"))
RUNBOOK_READER = _any(SYSTEM_READER, _owned("reader", "runbook_owner"), _role("service"))
RUNBOOK_CREATOR = _any(SYSTEM_MEMBER, _role("manager"), _role("service"))
TARGET_PROPERTIES_READER = _any(SYSTEM_READER, _role("admin"))
ANYONE: Check = lambda c, t: True  # noqa: E731  (Ironic's empty check string)

RULES: dict[str, Check] = {
    "baremetal:node:create": _any(SYSTEM_ADMIN, SYSTEM_SERVICE),
    # Ironic's [api]project_admin_can_manage_own_nodes (on by default): a project's admin
    # creates nodes owned by its project and deletes them.
    "baremetal:node:create:self_owned_node": _any(_role("admin"), _role("service")),
    "baremetal:node:list": API_READER,
    "baremetal:node:list_all": SYSTEM_READER,
    "baremetal:node:get": SYSTEM_OR_PROJECT_READER,
    # Who reads a node whole; the others get the fields below redacted (node_sanitize).
    "baremetal:node:get:filter_threshold": SYSTEM_READER,
    "baremetal:node:get:last_error": SYSTEM_OR_OWNER_READER,
    "baremetal:node:get:reservation": SYSTEM_OR_OWNER_READER,
    "baremetal:node:get:driver_internal_info": SYSTEM_OR_OWNER_READER,
    "baremetal:node:get:driver_info": SYSTEM_OR_OWNER_READER,
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
    "baremetal:node:update": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:update_extra": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:update_instance_info": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    # A new owner for a node in ``active``: else a 409 (NodesController.patch).
    "baremetal:node:update_owner_provisioned": SYSTEM_ADMIN,
    "baremetal:node:delete": SYSTEM_ADMIN,
    "baremetal:node:delete:self_owned_node": OWNER_ADMIN,
    "baremetal:node:validate": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:set_maintenance": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:clear_maintenance": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:get_boot_device": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:set_boot_device": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:get_indicator_state": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:set_indicator_state": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:inject_nmi": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:get_states": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:set_power_state": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:set_boot_mode": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:set_secure_boot": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:set_provision_state": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:set_provision_state:clean_steps": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:set_provision_state:service_steps": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:set_raid_state": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:get_console": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:set_console_state": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:vif:list": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:vif:attach": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:vif:detach": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:traits:list": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:traits:set": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:traits:delete": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:bios:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:disable_cleaning": SYSTEM_ADMIN,
    "baremetal:node:history:get": SYSTEM_OR_OWNER_READER,
    "baremetal:node:inventory:get": SYSTEM_OR_OWNER_READER,
    "baremetal:node:update:shard": SYSTEM_ADMIN,
    "baremetal:shards:get": SYSTEM_READER,
    "baremetal:node:update:parent_node": SYSTEM_MEMBER,
    "baremetal:node:update:disable_power_off": SYSTEM_ADMIN,
    "baremetal:node:firmware:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:vmedia:attach": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:vmedia:detach": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:vmedia:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:port:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:port:list": API_READER,
    "baremetal:port:list_all": SYSTEM_READER,
    "baremetal:port:create": SYSTEM_ADMIN_OR_OWNER_ADMIN,
    "baremetal:port:delete": SYSTEM_ADMIN_OR_OWNER_ADMIN,
    "baremetal:port:update": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:portgroup:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:portgroup:create": SYSTEM_ADMIN_OR_OWNER_ADMIN,
    "baremetal:portgroup:delete": SYSTEM_ADMIN_OR_OWNER_ADMIN,
    "baremetal:portgroup:update": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:portgroup:list": API_READER,
    "baremetal:portgroup:list_all": SYSTEM_READER,
    "baremetal:chassis:get": SYSTEM_READER,
    "baremetal:chassis:create": SYSTEM_ADMIN,
    "baremetal:chassis:delete": SYSTEM_ADMIN,
    "baremetal:chassis:update": SYSTEM_MEMBER,
    "baremetal:driver:get": SYSTEM_READER,
    "baremetal:driver:get_properties": SYSTEM_READER,
    "baremetal:driver:get_raid_logical_disk_properties": SYSTEM_READER,
    "baremetal:node:vendor_passthru": SYSTEM_ADMIN,
    "baremetal:driver:vendor_passthru": SYSTEM_ADMIN,
    # The agent's routes: public (services/api/auth.py), the agent token is the check.
    "baremetal:node:ipa_heartbeat": ANYONE,
    "baremetal:driver:ipa_lookup": ANYONE,
    "baremetal:driver:ipa_continue_inspection": ANYONE,
    "baremetal:volume:list_all": SYSTEM_READER,
    "baremetal:volume:list": API_READER,
    "baremetal:volume:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:volume:create": SYSTEM_MEMBER_OR_OWNER_LESSEE_ADMIN,
    "baremetal:volume:delete": SYSTEM_MEMBER_OR_OWNER_LESSEE_ADMIN,
    "baremetal:volume:update": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:volume:view_target_properties": TARGET_PROPERTIES_READER,
    "baremetal:conductor:get": SYSTEM_READER,
    "baremetal:allocation:get": ALLOCATION_READER,
    "baremetal:allocation:list": API_READER,
    "baremetal:allocation:list_all": SYSTEM_READER,
    "baremetal:allocation:create": ALLOCATION_CREATOR,
    "baremetal:allocation:create_restricted": SYSTEM_MEMBER,
    "baremetal:allocation:delete": ALLOCATION_MEMBER,
    "baremetal:allocation:update": ALLOCATION_MEMBER,
    "baremetal:deploy_template:get": SYSTEM_READER,
    "baremetal:deploy_template:create": SYSTEM_ADMIN,
    "baremetal:deploy_template:delete": SYSTEM_ADMIN,
    "baremetal:deploy_template:update": SYSTEM_ADMIN,
    "baremetal:inspection_rule:get": SYSTEM_READER,
    "baremetal:inspection_rule:list_all": SYSTEM_READER,
    "baremetal:inspection_rule:create": SYSTEM_ADMIN,
    "baremetal:inspection_rule:update": SYSTEM_ADMIN,
    "baremetal:inspection_rule:delete": SYSTEM_ADMIN,
    # A runbook's owner project reads it (a public one: anyone, RunbooksController.get_one)
    # and its managers change and use it; ``use``: a runbook named in a provision request.
    "baremetal:runbook:get": RUNBOOK_READER,
    "baremetal:runbook:list": API_READER,
    "baremetal:runbook:list_all": SYSTEM_READER,
    "baremetal:runbook:create": RUNBOOK_CREATOR,
    "baremetal:runbook:update": RUNBOOK_ADMIN,
    "baremetal:runbook:delete": RUNBOOK_ADMIN,
    "baremetal:runbook:use": RUNBOOK_ADMIN,
    "baremetal:runbook:update:public": SYSTEM_MEMBER,
    "baremetal:runbook:update:owner": SYSTEM_MEMBER,
    # Enclume's own routes (/v1/enclume): the system's readers read them and its members
    # change them.
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


# Ironic's rules of ``scope_types=['system']``: oslo.policy refuses other tokens whatever the
# check string says; the others are ['system', 'project'] but the agent's (no scope_types).
SYSTEM_SCOPED = frozenset({
    "baremetal:chassis:get", "baremetal:chassis:create", "baremetal:chassis:delete",
    "baremetal:chassis:update", "baremetal:driver:get", "baremetal:driver:get_properties",
    "baremetal:driver:get_raid_logical_disk_properties", "baremetal:driver:vendor_passthru",
    "baremetal:node:update_owner_provisioned"})
UNSCOPED = frozenset(rule for rule, check in RULES.items() if check is ANYONE)


def allowed(rule: str, credentials: Credentials, target: Target = Target(),
            rules: Mapping[str, Check] = RULES) -> bool:
    """``rules``: the table in force, Ironic's defaults or a policy file's
    (services/api/policy_file.py, ``rules_of``); a rule it lacks allows nobody."""
    if rule in RULES and rule not in UNSCOPED and not credentials.system and (
            credentials.domain_id or rule in SYSTEM_SCOPED):
        return False  # oslo.policy: the token's scope is not in the rule's scope_types
    check = rules.get(rule)
    return check is not None and check(credentials, target)


def unrestricted(credentials: Credentials, rules: Mapping[str, Check] = RULES) -> bool:
    """Every rule allows the caller whatever the target (a system admin): nothing to look up.
    Under a policy file, nobody: its rules may read the target in any way."""
    return rules is RULES and all(allowed(rule, credentials) for rule in RULES)


def rules_of(request: Request) -> Mapping[str, Check]:
    """The table the API was started with (``app.state.policy_rules``)."""
    rules: Mapping[str, Check] = getattr(request.app.state, "policy_rules", RULES)
    return rules


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
        return Credentials(scope.roles, scope.system, scope.project_id, scope.project_name,
                           scope.domain_id)
    roles: set[str] = set()
    if {"admin", "operator"} & set(identity.roles):
        roles |= {"admin", "member", "reader"}
    if "service" in identity.roles:
        roles.add("service")
    service = "service" in identity.roles
    return Credentials(frozenset(roles), system=bool(roles),
                       project_name=SERVICE_PROJECT if service else None)


_SYSTEM_ADMIN = Credentials(frozenset({"admin", "member", "reader"}), system=True)
