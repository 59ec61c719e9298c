"""Who may do what on /v1: Ironic's default policy (secure RBAC), the one owner of it.

The checks below are Ironic's ``ironic/common/policy.py`` defaults (Ironic 39), written as
Python predicates under Ironic's names instead of oslo.policy check strings: oslo.policy would
bring oslo.config's global configuration into every strategy (http_basic, users_file, ldap use
this table too). A caller is ``Credentials`` (Keystone's roles and scope, or what a classroom
role maps to, ``credentials_of``); a target is the object a rule is asked on, ``Target``: a
node's ``owner`` and ``lessee`` (a port's, port group's or volume's are its node's), an
allocation's or a runbook's ``owner``, or no object (chassis, drivers, lists, creates).
Keystone expands implied roles (admin implies manager, member, reader) in the token, and
the classroom mapping gives the same sets. tests/integration/test_policy_matches_ironic.py
asks Ironic's own defaults, loaded with oslo.policy, the same questions for every rule here
and each persona. An operator's policy file changes the table the app holds
(services/api/policy_file.py, ``rules_of``); scopes stay as below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

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


# Ironic's step-level rules, ``baremetal:step:execute:<interface>.<step>`` (policy_steps.py).
STEP_PREFIX = "baremetal:step:execute:"
_CALLERS_REMEMBERED = 4096  # a table's answers of ``unrestricted``, then forgotten
# Asked only when another rule refused (policy_gate: a node's delete).
_FALLBACKS = frozenset({"baremetal:node:delete:self_owned_node"})
# Ironic's object types (check_owner_policy's ``object_type``): the target's ``<kind>.owner``.
NODE, ALLOCATION, RUNBOOK = "node", "allocation", "runbook"
# Not an object: ``ANY_OBJECT``'s kind, for what a caller may do whatever the object.
_ANY = "any"


@dataclass(frozen=True)
class Target:
    """The object a rule is asked on, as Ironic gives it to oslo.policy: its kind (NODE for a
    node and its ports, port groups and volumes; ALLOCATION, RUNBOOK), its owner and a node's
    lessee. No kind: no object (Ironic's check_policy: chassis, drivers, lists, creates),
    whose rules find no owner at all, as oslo.policy finds no ``node.owner`` there."""

    kind: str | None = None
    owner: str | None = None
    lessee: str | None = None
    # Ironic's step rules get ``node.lessee`` even when None (steps._check_step_policy);
    # check_owner_policy leaves an unset lessee out.
    unset_lessee_shown: bool = False

    def values(self) -> dict[str, str | None]:
        """The object's entries of Ironic's target dict."""
        if self.kind in (None, _ANY):
            return {}  # ANY_OBJECT's: policy_checks asks for them
        values = {f"{self.kind}.owner": self.owner}
        if self.lessee or (self.kind == NODE and self.unset_lessee_shown):
            values[f"{self.kind}.lessee"] = self.lessee
        return values


# Any object at all: ``unrestricted`` asks the rules on it; a check its object decides raises
# ObjectNeeded (services/api/policy_checks.py), the defaults answer as for no object.
ANY_OBJECT = Target(_ANY)
OBJECT_FIELDS = frozenset({f"{NODE}.owner", f"{NODE}.lessee", f"{ALLOCATION}.owner",
                           f"{RUNBOOK}.owner"})


class ObjectNeeded(Exception):
    """A check asked on ANY_OBJECT whose answer depends on the object."""


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
        if t.kind != NODE:
            return False  # no node.<of> in the target: oslo.policy's no match
        project = getattr(t, of)
        if of == "lessee" and project is None and not t.unset_lessee_shown:
            return False  # check_owner_policy leaves node.lessee out: no match
        # node.owner is always there, None too, and oslo.policy compares text: an unowned
        # node's "None" matches a caller without a project, as in Ironic.
        return project == c.project_id
    return check


def _owned(name: str, kind: str) -> Check:
    """``role:name and project_id:%(<kind>.owner)s`` (ALLOCATION or RUNBOOK); None matches
    None, as above."""
    return lambda c, t: name in c.roles and t.kind == kind and t.owner == c.project_id


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
ALLOCATION_MEMBER = _any(SYSTEM_MEMBER, _owned("member", ALLOCATION))
ALLOCATION_READER = _any(SYSTEM_READER, _owned("reader", ALLOCATION))
ALLOCATION_CREATOR = _any(SYSTEM_MEMBER, _role("member"))
API_READER = _any(_role("reader"), _role("service"))
# Any project's service role, as Ironic's RUNBOOK_* strings have it (not rule:service_role).
RUNBOOK_ADMIN = _any(SYSTEM_MEMBER, _owned("manager", RUNBOOK), _role("service"))
RUNBOOK_READER = _any(SYSTEM_READER, _owned("reader", RUNBOOK), _role("service"))
RUNBOOK_CREATOR = _any(SYSTEM_MEMBER, _role("manager"), _role("service"))
TARGET_PROPERTIES_READER = _any(SYSTEM_READER, _role("admin"))
ANYONE: Check = lambda c, t: True  # noqa: E731  (Ironic's empty check string)


class RuleTable(dict[str, Check]):
    """Rules by name (Ironic's defaults, or a policy file's over them), and what is the same
    for every request under them, worked out once: the step rules, and who may do all."""

    def __init__(self, rules: Mapping[str, Check]) -> None:
        super().__init__(rules)
        self._unrestricted: dict[Credentials, bool] = {}

    @cached_property
    def step_rules(self) -> frozenset[str]:
        """Its rules of steps (none in Ironic's defaults), once it is complete."""
        return frozenset(name for name in self if name.startswith(STEP_PREFIX))

    def unrestricted(self, credentials: Credentials) -> bool:
        """Every rule the API asks allows the caller whatever the object (a system admin,
        unless a policy file says otherwise): the gate has nothing to look up."""
        known = self._unrestricted.get(credentials)
        if known is None:
            if len(self._unrestricted) >= _CALLERS_REMEMBERED:
                self._unrestricted.clear()
            known = self._unrestricted[credentials] = self._allows_all(credentials)
        return known

    def _allows_all(self, credentials: Credentials) -> bool:
        try:
            return all(allowed(rule, credentials, ANY_OBJECT, self)
                       for rule in (*RULES, *self.step_rules) if rule not in _FALLBACKS)
        except ObjectNeeded:
            return False


RULES: RuleTable = RuleTable({
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
})

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


def rules_of(request: Request) -> RuleTable:
    """The table the API was started with (``app.state.policy_rules``)."""
    rules: RuleTable = getattr(request.app.state, "policy_rules", RULES)
    return rules


def caller(request: Request) -> Credentials:
    """The credentials of the request's caller."""
    return credentials_of(request.scope.get("state", {}).get("identity"))


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
