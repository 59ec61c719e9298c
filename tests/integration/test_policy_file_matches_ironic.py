"""A policy file (ENCLUME_API_POLICY_FILE, services/api/policy_file.py) answers as Ironic does
with the same file.

The file below is loaded into Ironic's own oslo.policy enforcer (Ironic 39's defaults under
it, tests/support/ironic_policy.py, its venv cached under .cache) and into Enclume's table;
both are asked the file's rules, the finer rules a deprecated coarser override reaches, a few
rules the file leaves alone and the file's own aliases, for the callers of
test_policy_matches_ironic.py (system, project admin/member/reader as owner, lessee and
stranger, the service role, a domain admin, the classroom roles) on its nodes, allocations and
runbooks. Every answer must be the same. The file uses the whole language: aliases, Ironic's
base rules (``is_node_owner``, ``service_role``, ``is_admin``), ``not``/``and``/``or`` in
either case, parentheses, ``@``, ``!``, the empty string, literals, ``%(...)s`` fields of
the target, a role named by the target, dotted paths into the caller's values.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.api import policy
from services.api.policy_file import DEPRECATED_FOR, load_rules
from tests.support.ironic_policy import Answers, Question, ask, disagreements
from tests.support.policy_personas import (
    TARGETS,
    ironic_creds,
    ironic_target,
    personas,
    targets_of,
)

POLICY_FILE = """\
# aliases of the site
"site_admin": "role:admin and system_scope:all"
"owner_member": "role:member and project_id:%(node.owner)s"
"lessee_reader": "role:reader and project_id:%(node.lessee)s"
"in_domain": "domain_id:d1"
# a project's reader of the lessee powers the node; its members no more
"baremetal:node:set_power_state": "rule:site_admin or rule:owner_member or (rule:lessee_reader and not role:member)"
# deprecated coarser rules: their finer rules follow them unless set here
"baremetal:node:update": "rule:site_admin OR rule:is_node_owner AND role:MEMBER"
"baremetal:node:get": "rule:site_admin or rule:is_node_owner or rule:is_node_lessee or rule:service_role"
"baremetal:node:get:last_error": "system_scope:all"
"baremetal:portgroup:get": "rule:is_admin or rule:is_observer"
"baremetal:node:set_maintenance": "rule:baremetal:node:set_power_state"
# admin-only lists
"baremetal:node:list": "role:admin"
"baremetal:node:list_all": "rule:site_admin"
# system-scoped rules stay so whatever their check string says
"baremetal:chassis:get": "role:reader"
"baremetal:node:update_owner_provisioned": "role:admin"
# the system's resources have no owner: a check of one matches nobody there
"baremetal:chassis:update": "rule:is_node_owner or (role:admin and not rule:is_allocation_owner)"
"baremetal:driver:get": "role:reader and project_id:%(node.owner)s"
"baremetal:node:delete": "!"
"baremetal:node:vif:list": "@"
"baremetal:port:get": ""
"baremetal:allocation:get": "project_id:%(allocation.owner)s and not 'p-other':%(allocation.owner)s"
"baremetal:runbook:get": "role:reader and (project_id:%(runbook.owner)s or 'None':%(runbook.owner)s)"
"baremetal:node:traits:list": "role:%(node.owner)s or role:READER and not system:all"
"baremetal:node:bios:get": "roles:member and True:%(node.lessee)s or project_name:%(config.service_project_name)s"
"baremetal:node:firmware:get": "((role:admin) or (rule:in_domain))"
"baremetal:volume:get": "True:%(is_public_api)s or rule:baremetal:node:get"
# a step-level rule: only a file defines them
"baremetal:step:execute:deploy.erase_devices": "role:admin or rule:owner_member and not rule:lessee_reader"
"""  # noqa: E501  (check strings as an operator writes them, one a line)
FILE_RULES = [line.split('"')[1] for line in POLICY_FILE.splitlines() if line.startswith('"')]
UNTOUCHED = ["baremetal:node:validate", "baremetal:port:update", "baremetal:allocation:update"]


def _rules() -> list[str]:
    finer = [rule for rule, (coarser, _) in DEPRECATED_FOR.items() if coarser in FILE_RULES]
    return sorted({*FILE_RULES, *finer, *UNTOUCHED})


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(POLICY_FILE)
    return path


@pytest.fixture(scope="module")
def cases(policy_file: Path) -> list[tuple[str, str, str, bool]]:
    """(rule, persona, target, Enclume's answer under the file)."""
    rules = load_rules(policy_file)
    return [(rule, persona, target,
             policy.allowed(rule, credentials, TARGETS[target], rules))
            for rule in _rules()
            for persona, credentials in personas().items()
            for target in targets_of(rule)]


@pytest.fixture(scope="module")
def ironic(cases: list[tuple[str, str, str, bool]], policy_file: Path) -> Answers:
    callers = personas()
    questions = []
    for rule, persona, target, _ in cases:
        creds = ironic_creds(callers[persona])
        questions.append(Question(rule, creds, ironic_target(creds, TARGETS[target])))
    return ask(questions, policy_file)


def test_the_file_answers_as_in_ironic(cases: list[tuple[str, str, str, bool]],
                                       ironic: Answers) -> None:
    assert set(FILE_RULES) <= ironic.rules  # Ironic read the whole file
    differ = disagreements(cases, ironic)
    assert differ == [], "\n".join(differ)
    assert 0 < sum(ironic.allowed) < len(cases)


def test_the_file_changes_answers(cases: list[tuple[str, str, str, bool]]) -> None:
    """The comparison is of the file's answers, not the defaults' (which it changes)."""
    callers = personas()
    changed = [case for case in cases
               if case[3] != policy.allowed(case[0], callers[case[1]], TARGETS[case[2]])]
    changed_rules = {rule for rule, *_ in changed}
    assert {"baremetal:node:set_power_state", "baremetal:node:update:name",
            "baremetal:node:list", "baremetal:node:delete"} <= changed_rules
    assert "baremetal:portgroup:list" not in changed_rules  # the deprecated string: not passed
