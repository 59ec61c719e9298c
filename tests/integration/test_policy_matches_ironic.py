"""Enclume's policy table (services/api/policy.py) answers as Ironic's own defaults do.

Ironic 39's ``ironic.common.policy`` rules, registered in oslo.policy's ``Enforcer`` as Ironic
registers them (tests/support/ironic_policy.py, its venv cached under .cache), are asked every
rule Enclume serves for every persona (the system's admins, members and readers; a project's
admins, managers, members and readers as the node's owner, as its lessee and as a stranger;
the service role in the service project, system-scoped and in the owner's project; a
domain-scoped admin; the classroom roles as ``credentials_of`` maps them) on nodes owned and
leased, owned only, leased only and of no project, on allocations of the owner, of another
project and of none, and on runbooks of the owner, of another project and public (no
owner). Both answers must be the same.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.api import policy
from services.api.policy import SERVICE_PROJECT, Credentials, Target
from services.common.identity import Identity
from tests.support.ironic_policy import Answers, Question, ask

OWNER, LESSEE, OTHER = "p-owner", "p-lessee", "p-other"
# Keystone's implied roles (bootstrap): admin > manager > member > reader.
IMPLIED = {"admin": {"admin", "manager", "member", "reader"},
           "manager": {"manager", "member", "reader"},
           "member": {"member", "reader"}, "reader": {"reader"}}
# Ironic's rules Enclume does not serve: no route of Enclume's reaches them.
UNSERVED = {"baremetal:events:post",  # Enclume's events are /v1/enclume/events
            "baremetal:allocation:create_pre_rbac",  # legacy (enforce_new_defaults off)
            }


def _personas() -> dict[str, Credentials]:
    personas = {f"system-{role}": Credentials(frozenset(IMPLIED[role]), system=True)
                for role in ("admin", "member", "reader")}
    for project, label in ((OWNER, "owner"), (LESSEE, "lessee"), (OTHER, "other")):
        for role in ("admin", "manager", "member", "reader"):
            personas[f"{label}-{role}"] = Credentials(frozenset(IMPLIED[role]),
                                                      project_id=project, project_name=project)
        personas[f"{label}-service"] = Credentials(frozenset({"service"}), project_id=project,
                                                   project_name=project)
        personas[f"{label}-no-role"] = Credentials(frozenset(), project_id=project,
                                                   project_name=project)
    personas["service-project-service"] = Credentials(
        frozenset({"service"}), project_id="p-service", project_name=SERVICE_PROJECT)
    personas["service-project-reader"] = Credentials(
        frozenset({"reader"}), project_id="p-service", project_name=SERVICE_PROJECT)
    personas["system-service"] = Credentials(frozenset({"service"}), system=True)
    personas["domain-admin"] = Credentials(frozenset(IMPLIED["admin"]), domain_id="d1")
    for role in ("admin", "operator", "service", "teacher"):  # http_basic, the users file
        personas[f"classroom-{role}"] = policy.credentials_of(Identity(role, frozenset({role})))
    personas["noauth"] = policy.credentials_of(None)
    return personas


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


def _targets(rule: str) -> dict[str, Target]:
    if rule.startswith("baremetal:allocation:"):
        return ALLOCATION_TARGETS
    return RUNBOOK_TARGETS if rule.startswith("baremetal:runbook:") else NODE_TARGETS


def _ironic_creds(credentials: Credentials) -> dict[str, Any]:
    """What Ironic's RequestContext.to_policy_values gives oslo.policy for this caller."""
    return {"user_id": "u", "roles": sorted(credentials.roles),
            "system_scope": "all" if credentials.system else None,
            "project_id": credentials.project_id, "project_name": credentials.project_name,
            "domain_id": credentials.domain_id,
            "project_domain_id": "default" if credentials.project_id else None,
            "user_domain_id": "default", "is_admin_project": True}


def _ironic_target(creds: dict[str, Any], target: Target) -> dict[str, Any]:
    """Ironic's target dicts: the caller's values, the service project of rule:service_role
    (RequestContext.to_policy_values), and the object's owner (check_owner_policy)."""
    values = {**creds, "config.service_project_name": SERVICE_PROJECT,
              "node.owner": target.owner, "allocation.owner": target.allocation_owner,
              "runbook.owner": target.runbook_owner}
    if target.lessee:
        values["node.lessee"] = target.lessee
    return values


@pytest.fixture(scope="module")
def cases() -> list[tuple[str, str, str, bool]]:
    """(rule, persona, target, Enclume's answer) for every served rule."""
    return [(rule, persona, target, policy.allowed(rule, credentials, TARGETS[target]))
            for rule in sorted(policy.RULES) if rule.startswith("baremetal:")
            for persona, credentials in _personas().items()
            for target in _targets(rule)]


@pytest.fixture(scope="module")
def ironic(cases: list[tuple[str, str, str, bool]]) -> Answers:
    personas = _personas()
    questions = []
    for rule, persona, target, _ in cases:
        creds = _ironic_creds(personas[persona])
        questions.append(Question(rule, creds, _ironic_target(creds, TARGETS[target])))
    return ask(questions)


def test_enclume_serves_ironics_rules_under_ironics_names(ironic: Answers) -> None:
    ours = {rule for rule in policy.RULES if rule.startswith("baremetal:")}
    theirs = {rule for rule in ironic.rules if rule.startswith("baremetal:")}
    assert ours - theirs == set(), "rules Ironic does not define"
    assert theirs - ours == UNSERVED, "Ironic's rules missing from Enclume's table"


def test_every_rule_answers_as_ironic_for_every_persona(
        cases: list[tuple[str, str, str, bool]], ironic: Answers) -> None:
    assert len(ironic.allowed) == len(cases)
    differ = [f"{rule} for {persona} on {target}: Ironic {theirs}, Enclume {ours}"
              for (rule, persona, target, ours), theirs in zip(cases, ironic.allowed,
                                                                 strict=True)
              if ours != theirs]
    assert differ == [], "\n".join(differ)
    # The comparison has both answers in it: personas allowed and refused.
    assert 0 < sum(ironic.allowed) < len(cases)
