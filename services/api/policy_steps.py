"""Ironic's step-level rules, ``baremetal:step:execute:<interface>.<step>``: none by default,
an operator's policy file may define them (services/api/policy_file.py); a step whose rule
the table holds needs it (Ironic's ``conductor.steps.validate_user_steps_policy``).

Asked where Ironic's API asks: a provision request's own deploy, clean and service steps
(on the node: services/api/policy_gate.py), a runbook's steps when a provision request
uses a runbook with an owner that is not public (runbooks.provision_options), and a
runbook's steps when one is created or its steps patched (on no node: Ironic's runbook
controller). A refused step is Ironic's 403, naming each step refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from starlette.requests import Request

from services.api import policy
from services.common.exceptions import Forbidden


def authorize(request: Request, steps: Iterable[Any],
              target: policy.Target = policy.Target()) -> None:
    """``target``: the node the steps run on; none for a runbook's."""
    rules = policy.rules_of(request)
    if not rules.step_rules:
        return  # Ironic's defaults define none
    credentials = policy.caller(request)
    on_node = replace(target, unset_lessee_shown=True)
    refused = []
    for step in steps:
        if not isinstance(step, dict):
            continue  # the endpoint's 400
        interface, name = step.get("interface"), step.get("step")
        rule = f"{policy.STEP_PREFIX}{interface}.{name}"
        if rule in rules.step_rules and not policy.allowed(rule, credentials, on_node, rules):
            refused.append(f"insufficient privileges to execute step {name} on interface "
                           f"{interface}")
    if refused:
        raise Forbidden("; ".join(refused))
