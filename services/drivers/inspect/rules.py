"""Inspection rules (Ironic's, API 1.96) applied to what an inspection found, as Ironic's
inspection rules engine applies them (ironic/common/inspection_rules/engine.py): the rules of
the phase (``main``: the one phase there is), highest ``priority`` first (equal priorities in
the order they were created); a rule whose conditions all hold runs its actions in order.
A condition or an action with a ``loop`` runs once per item. The ``fail`` action fails the
inspection with its message; any other error fails it naming the rule.

Conditions read the inventory and plugin data through a masked copy (rule_arguments);
actions change the node and its ports in the inspection's session, and the plugin data that
is stored with the inventory afterwards."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from services.common.rule_models import InspectionRule
from services.drivers.inspect import rule_actions, rule_operators
from services.drivers.inspect.rule_actions import RuleFailed
from services.drivers.inspect.rule_arguments import RuleExecutionError, context_of

if TYPE_CHECKING:
    from services.conductor.task import Task

LOG = logging.getLogger(__name__)
MAIN_PHASE = "main"


def _conditions_hold(task: Task, rule: InspectionRule, inventory: dict[str, Any],
                     plugin_data: dict[str, Any]) -> bool:
    for condition in rule.conditions or []:
        context = context_of(task.node, inventory, plugin_data)
        if not rule_operators.holds(condition, context):
            LOG.debug("node %s: rule %s skipped: condition %s failed", task.node.uuid,
                      rule.uuid, condition.get("op"))
            return False
    return True


def _run_actions(task: Task, rule: InspectionRule, inventory: dict[str, Any],
                 plugin_data: dict[str, Any]) -> None:
    for action in rule.actions or []:
        loop = action.get("loop")
        if not loop or not isinstance(loop, list | dict):
            items: list[dict[str, Any] | None] = [None]
        else:
            items = [{"item": loop}] if isinstance(loop, dict) else [
                {"item": entry} for entry in loop]
        for item in items:
            # Seen afresh for each action: an earlier one may have changed the node or data.
            context = context_of(task.node, inventory, plugin_data)
            rule_actions.run(task, action, context, plugin_data, item)


def apply_rules(task: Task, inventory: dict[str, Any], plugin_data: dict[str, Any],
                phase: str = MAIN_PHASE) -> list[str]:
    """Apply the phase's rules to the task's node; the UUIDs of the rules that applied.
    RuleFailed (a ``fail`` action) or RuleExecutionError (any other error) stop them."""
    rules = task.session.scalars(select(InspectionRule).where(InspectionRule.phase == phase)
                                 .order_by(InspectionRule.id)).all()
    applied = []
    for rule in sorted(rules, key=lambda rule: rule.priority, reverse=True):
        try:
            if not _conditions_hold(task, rule, inventory, plugin_data):
                continue
            LOG.info("node %s: applying the actions of inspection rule %s", task.node.uuid,
                     rule.uuid)
            _run_actions(task, rule, inventory, plugin_data)
        except RuleFailed:
            raise
        except Exception as exc:  # any error of a rule fails the inspection, as Ironic's
            raise RuleExecutionError(f"Failed to apply rule {rule.uuid} to node "
                                     f"{task.node.uuid}: {exc}") from None
        applied.append(rule.uuid)
    return applied
