"""The callers and objects the policy tests ask Enclume and Ironic about, and what Ironic's
oslo.policy is given for them (tests/integration/test_policy_matches_ironic.py,
test_policy_file_matches_ironic.py)."""

from __future__ import annotations

from typing import Any

from services.api import policy
from services.api.policy import ALLOCATION, NODE, RUNBOOK, SERVICE_PROJECT, Credentials, Target
from services.common.identity import Identity

OWNER, LESSEE, OTHER = "p-owner", "p-lessee", "p-other"
# Keystone's implied roles (bootstrap): admin > manager > member > reader.
IMPLIED = {"admin": {"admin", "manager", "member", "reader"},
           "manager": {"manager", "member", "reader"},
           "member": {"member", "reader"}, "reader": {"reader"}}


def personas() -> dict[str, Credentials]:
    found = {f"system-{role}": Credentials(frozenset(IMPLIED[role]), system=True)
             for role in ("admin", "member", "reader")}
    for project, label in ((OWNER, "owner"), (LESSEE, "lessee"), (OTHER, "other")):
        for role in ("admin", "manager", "member", "reader"):
            found[f"{label}-{role}"] = Credentials(frozenset(IMPLIED[role]),
                                                   project_id=project, project_name=project)
        found[f"{label}-service"] = Credentials(frozenset({"service"}), project_id=project,
                                                project_name=project)
        found[f"{label}-no-role"] = Credentials(frozenset(), project_id=project,
                                                project_name=project)
    found["service-project-service"] = Credentials(
        frozenset({"service"}), project_id="p-service", project_name=SERVICE_PROJECT)
    found["service-project-reader"] = Credentials(
        frozenset({"reader"}), project_id="p-service", project_name=SERVICE_PROJECT)
    found["system-service"] = Credentials(frozenset({"service"}), system=True)
    found["domain-admin"] = Credentials(frozenset(IMPLIED["admin"]), domain_id="d1")
    for role in ("admin", "operator", "service", "teacher"):  # http_basic, the users file
        found[f"classroom-{role}"] = policy.credentials_of(Identity(role, frozenset({role})))
    found["noauth"] = policy.credentials_of(None)
    return found


NODE_TARGETS = {"owned-and-leased": Target(NODE, OWNER, LESSEE),
                "owned": Target(NODE, OWNER),
                "leased-only": Target(NODE, lessee=LESSEE),
                "no-project": Target(NODE)}
ALLOCATION_TARGETS = {"allocation-of-owner": Target(ALLOCATION, OWNER),
                      "allocation-of-other": Target(ALLOCATION, OTHER),
                      "allocation-of-none": Target(ALLOCATION)}
# A public runbook has no owner (its public flag is the controller's fallback, not the
# policy's: tests/integration/test_keystone_auth.py).
RUNBOOK_TARGETS = {"runbook-of-owner": Target(RUNBOOK, OWNER),
                   "runbook-of-other": Target(RUNBOOK, OTHER),
                   "runbook-public": Target(RUNBOOK)}
# Ironic's check_policy: the system's resources (chassis, drivers ...), lists, creates.
NO_OBJECT = {"no-object": Target()}
# Ironic's step rules on a node (steps._check_step_policy).
STEP_TARGETS = {f"steps-on-{name}": Target(NODE, target.owner, target.lessee,
                                           unset_lessee_shown=True)
                for name, target in NODE_TARGETS.items()}
TARGETS = {**NODE_TARGETS, **ALLOCATION_TARGETS, **RUNBOOK_TARGETS, **NO_OBJECT,
           **STEP_TARGETS}


def targets_of(rule: str) -> dict[str, Target]:
    """The objects the rule is asked on: its kind's, and no object (where Ironic asks some
    rules: chassis, drivers, lists; the others are as well answered there)."""
    if rule.startswith("baremetal:step:execute:"):
        return {**STEP_TARGETS, **NO_OBJECT}  # a runbook's steps: no object
    if rule.startswith("baremetal:allocation:"):
        return {**ALLOCATION_TARGETS, **NO_OBJECT}
    if rule.startswith("baremetal:runbook:"):
        return {**RUNBOOK_TARGETS, **NO_OBJECT}
    return {**NODE_TARGETS, **NO_OBJECT}


def ironic_creds(credentials: Credentials) -> dict[str, Any]:
    """What Ironic's RequestContext.to_policy_values gives oslo.policy for this caller."""
    return {"user_id": "u", "roles": sorted(credentials.roles),
            "system_scope": "all" if credentials.system else None,
            "project_id": credentials.project_id, "project_name": credentials.project_name,
            "domain_id": credentials.domain_id,
            "project_domain_id": "default" if credentials.project_id else None,
            "user_domain_id": "default", "is_admin_project": True}


def ironic_target(creds: dict[str, Any], target: Target) -> dict[str, Any]:
    """Ironic's target dicts, as ironic/api/controllers/v1/utils.py and
    ironic/conductor/steps.py build them: the caller's values and the service project of
    rule:service_role (RequestContext.to_policy_values; check_policy gives no more), the
    object's owner and a node's lessee when it has one (check_owner_policy), a node's owner
    and lessee, None too (_check_step_policy)."""
    values = {**creds, "config.service_project_name": SERVICE_PROJECT}
    if target.kind is None:
        return values  # check_policy
    values[f"{target.kind}.owner"] = target.owner
    if target.unset_lessee_shown:
        values["node.lessee"] = target.lessee  # _check_step_policy
    elif target.lessee:
        values[f"{target.kind}.lessee"] = target.lessee  # check_owner_policy
    return values
