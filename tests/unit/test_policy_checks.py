"""oslo.policy's check-string language as services/api/policy_checks.py parses and answers it
(its answers against oslo.policy itself: tests/integration/test_policy_file_matches_ironic.py)."""

from __future__ import annotations

import pytest

from services.api import policy
from services.api.policy import NODE, Credentials, Target
from services.api.policy_checks import (
    CALLER_FIELDS,
    And,
    CheckSyntaxError,
    Constant,
    FileRule,
    GenericCheck,
    Not,
    Or,
    RoleCheck,
    RuleRef,
    caller_fields,
    caller_values,
    parse,
    referenced_rules,
)

MEMBER = Credentials(frozenset({"member", "reader"}), project_id="p1", project_name="site")
SYSTEM = Credentials(frozenset({"admin", "reader"}), system=True)


def answer(text: str, credentials: Credentials, target: Target = Target(NODE),
           rules: dict[str, policy.Check] | None = None) -> bool:
    return FileRule(parse(text), rules or {})(credentials, target)


def test_not_binds_tighter_than_and_and_and_than_or() -> None:
    a, b, c, d = (RoleCheck(name) for name in "abcd")
    assert parse("role:a or role:b and role:c") == Or((a, And((b, c))))
    assert parse("role:a AND not role:b Or role:c and role:d") == Or(
        (And((a, Not(b))), And((c, d))))
    assert parse("(role:a or role:b) and role:c") == And((Or((a, b)), c))
    assert parse("not (role:a or role:b)") == Not(Or((a, b)))
    assert parse("((role:a))") == a
    assert parse("not not role:a") == Not(Not(a))


def test_constants_rules_and_generic_checks() -> None:
    assert parse("") == Constant(True) and parse("@") == Constant(True)
    assert parse("!") == Constant(False)
    assert parse("rule:baremetal:node:get") == RuleRef("baremetal:node:get")
    assert parse("project_id:%(node.owner)s") == GenericCheck("project_id", "%(node.owner)s",
                                                              None)
    assert parse("True:%(x)s") == GenericCheck("True", "%(x)s", "True")
    assert parse("'p2':%(node.owner)s") == GenericCheck("'p2'", "%(node.owner)s", "p2")
    assert referenced_rules(parse("rule:a or (role:x and not rule:b)")) == {"a", "b"}
    assert caller_fields(parse("rule:a or (roles.x:y and not 'p':%(z)s) or not user_id:u")
                         ) == {"roles", "user_id"}


def test_the_caller_fields_are_what_a_caller_has() -> None:
    assert {"roles", "system_scope", "system", "project_id", "project_name",
                             "domain_id", "is_public_api"} == CALLER_FIELDS
    assert set(caller_values(MEMBER)) == CALLER_FIELDS - {"system"}  # only a system caller's


@pytest.mark.parametrize(("text", "target", "expected"), [
    ("role:MEMBER", Target(), True),  # roles compare in any case
    ("role:admin", Target(), False),
    ("role:%(node.owner)s", Target(NODE, "reader"), True),  # a role the target names
    ("project_id:%(node.owner)s", Target(NODE, "p1"), True),
    ("project_id:%(node.owner)s", Target(NODE, "p2"), False),
    ("project_id:%(node.lessee)s", Target(NODE), False),  # no lessee: the field is missing
    ("project_id:%(node.lessee)s", Target(NODE, lessee="p1"), True),
    ("project_name:%(config.service_project_name)s", Target(), False),
    ("'p1':%(node.owner)s", Target(NODE, "p1"), True),  # a literal on the left
    ("None:%(node.owner)s", Target(NODE), True),  # values compare as text
    # No object (a chassis, a driver: Ironic's check_policy): no node.owner to compare.
    ("None:%(node.owner)s", Target(), False),
    ("'p1':%(allocation.owner)s", Target(NODE, "p1"), False),  # a node has no allocation.owner
    ("system_scope:all", Target(), False),
    ("roles:reader", Target(), True),  # a list matches when one item does
    ("roles.x:reader", Target(), False),
    ("unknown_field:x", Target(), False),
    ("role:member and not project_id:%(node.owner)s", Target(NODE, "p2"), True),
])
def test_checks_answer_on_the_callers_values(text: str, target: Target, expected: bool
                                             ) -> None:
    assert answer(text, MEMBER, target) is expected


def test_system_scope_and_its_copy() -> None:
    assert answer("system_scope:all and system:all", SYSTEM)
    assert not answer("system_scope:all", MEMBER)


def test_rule_references_ask_the_table_and_an_unknown_rule_allows_nobody() -> None:
    rules: dict[str, policy.Check] = {"yes": lambda c, t: True, "no": lambda c, t: False}
    assert answer("rule:yes and not rule:no", MEMBER, rules=rules)
    assert not answer("rule:missing or rule:no", MEMBER, rules=rules)


@pytest.mark.parametrize(("text", "says"), [
    ("   ", "blanks only"),
    ("role:a or", "ends where a check was expected"),
    ("role:a role:b", "unexpected check"),
    ("(role:a", "parenthesis is not closed"),
    ("role:a)", "unexpected ')'"),
    ("and role:a", "unexpected 'and'"),
    ("admin", "'admin' is not a check"),
    ("'admin'", "quoted string"),
    ("http://policy.example/check", "remote http checks are not supported"),
    ("project_id:%(node.owner)d%", "is not a %(field)s template"),
    ("1a:x", "neither a field nor a literal"),
])
def test_check_strings_oslo_policy_would_not_understand_are_refused(text: str, says: str
                                                                    ) -> None:
    with pytest.raises(CheckSyntaxError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


def test_a_decision_builds_the_callers_values_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """``rule:`` references answer the decision's Question, not one of their own each."""
    from services.api import policy_checks

    built = []
    monkeypatch.setattr(policy_checks, "caller_values",
                        lambda credentials: built.append(credentials) or caller_values(
                            credentials))
    rules: dict[str, policy.Check] = {}
    rules.update({"a": FileRule(parse("role:x or rule:b"), rules),
                  "b": FileRule(parse("rule:c and project_id:%(node.owner)s"), rules),
                  "c": FileRule(parse("role:member"), rules)})
    assert rules["a"](MEMBER, Target(NODE, "p1"))
    assert built == [MEMBER]
