"""The arguments of an inspection rule's condition or action, as Ironic's engine prepares them
(ironic/common/inspection_rules/base.py): the deprecated list form named by the operator's
signature, and Python format strings ("{inventory[cpu][count]}", "{node.driver_info[x]}",
"{item[path]}" in a loop) filled from what the rules may see. What they see hides the values
of the keys ``password``, ``auth_token`` and ``bmc_password`` ("***"), at every depth (Ironic's
default ``mask_secrets = always``)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

from services.common.exceptions import DriverError
from services.common.inspection_rule_ops import ACTIONS, OPERATORS, PLUGIN_DATA_ACTIONS
from services.common.models import Node

LOG = logging.getLogger(__name__)
SENSITIVE_FIELDS = frozenset({"password", "auth_token", "bmc_password"})
MASK = "***"


class RuleExecutionError(DriverError):
    """A condition or an action could not run (a bad value, a failed call)."""


def masked(value: Any) -> Any:
    """A copy of ``value`` with every sensitive key's value hidden."""
    if isinstance(value, dict):
        return {key: MASK if key in SENSITIVE_FIELDS else masked(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def context_of(node: Node, inventory: dict[str, Any],
               plugin_data: dict[str, Any]) -> dict[str, Any]:
    """What format strings may name: the node's fields (a plain copy: no attribute of the
    database row), the inventory and the plugin data, masked."""
    fields = {column.key: masked(getattr(node, column.key))
              for column in Node.__mapper__.column_attrs}
    return {"node": SimpleNamespace(**fields), "inventory": masked(inventory),
            "plugin_data": masked(plugin_data)}


def _format(text: str, context: dict[str, Any], op: str) -> Any:
    try:
        return text.format(**context)
    except KeyError as exc:
        if op == "is-empty":  # a missing field is empty
            return None
        LOG.warning("inspection rule: interpolation failed: %s: KeyError %s", text, exc)
    except (AttributeError, ValueError, IndexError, TypeError) as exc:
        LOG.warning("inspection rule: interpolation failed: %s: %s %s", text,
                    type(exc).__name__, exc)
    return text


def interpolate(value: Any, context: dict[str, Any], op: str) -> Any:
    if isinstance(value, str):
        return _format(value, context, op)
    if isinstance(value, dict):
        return {(_format(key, context, op) if isinstance(key, str) else key):
                interpolate(item, context, op) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, context, op) for item in value]
    return value


def _named(op: str, args: Any) -> dict[str, Any]:
    """The arguments by name (the list form is named by the operator's signature)."""
    if isinstance(args, dict):
        return dict(args)
    required, optional = OPERATORS.get(op) or ACTIONS[op]
    if op in PLUGIN_DATA_ACTIONS:
        required = tuple(name for name in required if name != "plugin_data")
    if not isinstance(args, list) or len(args) < len(required):
        raise RuleExecutionError(f"Invalid arguments for {op}: {args!r}")
    return dict(zip((*required, *optional), args, strict=False))


def arguments(op: str, args: Any, formatted: tuple[str, ...], context: dict[str, Any],
              item: dict[str, Any] | None) -> dict[str, Any]:
    """The named arguments of one operation, interpolated: the ``formatted`` ones, or all of
    them in a loop (where ``{item}`` names the loop's item; formatted twice, as Ironic)."""
    named = _named(op, args)
    named.pop("plugin_data", None)  # the engine gives the real one to the actions needing it
    if item is None:
        return {key: interpolate(value, context, op) if key in formatted else value
                for key, value in named.items()}
    looped = {**context, **item}
    result = {}
    for key, value in named.items():
        once = _format(value, looped, op) if isinstance(value, str) else value
        result[key] = interpolate(once, looped, op)
    return result
