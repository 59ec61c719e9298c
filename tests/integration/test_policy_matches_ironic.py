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

import pytest

from services.api import policy
from tests.support.ironic_policy import Answers, Question, ask, disagreements
from tests.support.policy_personas import TARGETS, ironic_creds, ironic_target, personas
from tests.support.policy_personas import targets_of as _targets

# Ironic's rules Enclume does not serve: no route of Enclume's reaches them.
UNSERVED = {"baremetal:events:post",  # Enclume's events are /v1/enclume/events
            "baremetal:allocation:create_pre_rbac",  # legacy (enforce_new_defaults off)
            }


@pytest.fixture(scope="module")
def cases() -> list[tuple[str, str, str, bool]]:
    """(rule, persona, target, Enclume's answer) for every served rule."""
    return [(rule, persona, target, policy.allowed(rule, credentials, TARGETS[target]))
            for rule in sorted(policy.RULES) if rule.startswith("baremetal:")
            for persona, credentials in personas().items()
            for target in _targets(rule)]


@pytest.fixture(scope="module")
def ironic(cases: list[tuple[str, str, str, bool]]) -> Answers:
    callers = personas()
    questions = []
    for rule, persona, target, _ in cases:
        creds = ironic_creds(callers[persona])
        questions.append(Question(rule, creds, ironic_target(creds, TARGETS[target])))
    return ask(questions)


def test_enclume_serves_ironics_rules_under_ironics_names(ironic: Answers) -> None:
    ours = {rule for rule in policy.RULES if rule.startswith("baremetal:")}
    theirs = {rule for rule in ironic.rules if rule.startswith("baremetal:")}
    assert ours - theirs == set(), "rules Ironic does not define"
    assert theirs - ours == UNSERVED, "Ironic's rules missing from Enclume's table"


def test_every_rule_answers_as_ironic_for_every_persona(
        cases: list[tuple[str, str, str, bool]], ironic: Answers) -> None:
    differ = disagreements(cases, ironic)
    assert differ == [], "\n".join(differ)
    # The comparison has both answers in it: personas allowed and refused.
    assert 0 < sum(ironic.allowed) < len(cases)
