"""The conditions of inspection rules, as Ironic's inspection rules engine checks them
(ironic/common/inspection_rules/operators.py): each operator, its ``!`` inversion, its ``loop``
over items with ``multiple`` (any, all, first, last), and the arguments interpolated from the
node, the inventory and the plugin data (``rule_arguments``)."""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable
from typing import Any

from services.drivers.inspect.rule_arguments import RuleExecutionError, arguments

# The arguments each operator interpolates ("{inventory[cpu][count]}").
FORMATTED: dict[str, tuple[str, ...]] = {
    "eq": ("values",), "lt": ("values",), "gt": ("values",), "in-net": ("address", "subnet"),
    **{op: ("value",) for op in ("is-empty", "matches", "contains", "one-of", "is-none",
                                 "is-true", "is-false")},
}
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "lt": operator.lt, "gt": operator.gt}


def _compare(op: str, values: Any, force_strings: bool = False) -> bool:
    if not isinstance(values, list):
        raise RuleExecutionError(f"Failed to check condition: '{op}' on values: {values}: "
                                 f"Expected list for 'values', got: {type(values).__name__}")
    if len(values) < 2:
        return True
    if force_strings:
        values = [str(value) for value in values]
    compare = _COMPARISONS[op]
    return all(compare(values[i], values[i + 1]) for i in range(len(values) - 1))


def _regex(regex: Any) -> str:
    try:
        re.compile(regex)
    except (re.error, TypeError) as exc:
        raise RuleExecutionError(f"invalid regular expression: {exc}") from None
    return str(regex)


def _matches(value: Any, regex: Any) -> bool:
    pattern = _regex(regex)
    if not pattern.endswith("$"):
        pattern += "$"
    return re.match(pattern, str(value)) is not None


def _in_net(address: Any, subnet: Any) -> bool:
    try:
        network = ipaddress.ip_network(str(subnet), strict=False)
    except ValueError as exc:
        raise RuleExecutionError(f"invalid value: {exc}") from None
    try:
        return ipaddress.ip_address(str(address)) in network
    except ValueError as exc:
        raise RuleExecutionError(f"invalid value: {exc}") from None


def _is_true(value: Any) -> bool:
    if isinstance(value, bool | int | float):
        return bool(value)
    return isinstance(value, str) and value.lower() in ("yes", "true")


def _is_false(value: Any) -> bool:
    if isinstance(value, bool | int | float):
        return not value
    if isinstance(value, str):
        return value.lower() in ("no", "false")
    return value is None


def _evaluate(op: str, args: dict[str, Any]) -> bool:
    if op in _COMPARISONS:
        return _compare(op, args["values"], bool(args.get("force_strings", False)))
    if op == "is-empty":
        return str(args["value"]) in ("", "None", "[]", "{}")
    if op == "in-net":
        return _in_net(args["address"], args["subnet"])
    if op == "matches":
        return _matches(args["value"], args["regex"])
    if op == "contains":
        return re.search(_regex(args["regex"]), str(args["value"])) is not None
    if op == "one-of":
        return args["value"] in (args.get("values") or [])
    if op == "is-none":
        return args["value"] is None
    if op == "is-true":
        return _is_true(args["value"])
    return _is_false(args["value"])  # is-false: the API accepts no other operator


def parse_inverted(op: str) -> tuple[str, bool]:
    """("eq", False) of "eq", ("eq", True) of "!eq" (one "!" at most, as Ironic)."""
    op = op.strip()
    if op.count("!") > 1:
        raise RuleExecutionError("Multiple exclamation marks are not allowed. To apply the "
                                 "invert of an operation, simply add an exclamation mark "
                                 "(with an optional space) before the operator, e.g. eq - !eq.")
    return op.lstrip("!").strip(), op.startswith("!")


def _check_once(condition: dict[str, Any], context: dict[str, Any],
                item: dict[str, Any] | None) -> bool:
    op, inverted = parse_inverted(condition["op"])
    args = arguments(op, condition.get("args", {}), FORMATTED.get(op, ()), context, item)
    if item is not None and op in _COMPARISONS:
        # Interpolated numbers become strings in a loop: compare everything as strings.
        args["force_strings"] = True
    result = _evaluate(op, args)
    return not result if inverted else result


def holds(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    """Whether one condition holds, looping over its ``loop`` items when it has some."""
    loop = condition.get("loop")
    if not loop or not isinstance(loop, list | dict):
        return _check_once(condition, context, None)
    multiple = condition.get("multiple", "any")
    if isinstance(loop, dict):
        result = _check_once(condition, context, {"item": loop})
        if multiple in ("first", "last"):
            return result
        results = [result]
    else:
        results = []
        for entry in loop:
            result = _check_once(condition, context, {"item": entry})
            if multiple == "first" and result:
                return True
            results = [result] if multiple == "last" else [*results, result]
    if multiple == "any":
        return any(results)
    if multiple == "all":
        return all(results)
    return results[0] if results else False
