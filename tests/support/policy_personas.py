"""The callers and objects the policy tests ask Enclume and Ironic about, and what Ironic's
oslo.policy is given for them (tests/integration/test_policy_matches_ironic.py,
test_policy_file_matches_ironic.py)."""

from __future__ import annotations

from typing import Any

from services.api import policy
from services.api.policy import SERVICE_PROJECT, Credentials, Target
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


NODE_TARGETS = {"owned-and-leased": Target(owner=OWNER, lessee=LESSEE),
                "owned": Target(owner=OWNER),
                "leased-only": Target(lessee=LESSEE),
                "no-project": Target()}
# Allocation rules read the allocation's owner only (the node's fields stay None).
ALLOCATION_TARGETS = {"allocation-of-owner": Target(allocation_owner=OWNER),
                      "allocation-of-other": Target(allocation_owner=OTHER),
                      "allocation-of-none": Target()}
# Runbook rules read the runbook's owner only; a public runbook has none (its public flag is
# the controller's fallback, not the policy's: tests/integration/test_keystone_auth.py).
RUNBOOK_TARGETS = {"runbook-of-owner": Target(runbook_owner=OWNER),
                   "runbook-of-other": Target(runbook_owner=OTHER),
                   "runbook-public": Target()}
TARGETS = {**NODE_TARGETS, **ALLOCATION_TARGETS, **RUNBOOK_TARGETS}


def targets_of(rule: str) -> dict[str, Target]:
    if rule.startswith("baremetal:allocation:"):
        return ALLOCATION_TARGETS
    return RUNBOOK_TARGETS if rule.startswith("baremetal:runbook:") else NODE_TARGETS


def ironic_creds(credentials: Credentials) -> dict[str, Any]:
    """What Ironic's RequestContext.to_policy_values gives oslo.policy for this caller."""
    return {"user_id": "u", "roles": sorted(credentials.roles),
            "system_scope": "all" if credentials.system else None,
            "project_id": credentials.project_id, "project_name": credentials.project_name,
            "domain_id": credentials.domain_id,
            "project_domain_id": "default" if credentials.project_id else None,
            "user_domain_id": "default", "is_admin_project": True}


def ironic_target(creds: dict[str, Any], target: Target) -> dict[str, Any]:
    """Ironic's target dicts: the caller's values, the service project of rule:service_role
    (RequestContext.to_policy_values), and the object's owner (check_owner_policy)."""
    values = {**creds, "config.service_project_name": SERVICE_PROJECT,
              "node.owner": target.owner, "allocation.owner": target.allocation_owner,
              "runbook.owner": target.runbook_owner}
    if target.lessee:
        values["node.lessee"] = target.lessee
    return values
