"""What an inspection rule (Ironic's, API 1.96) may hold, checked as Ironic's
``inspection_rules.validation.validate_rule`` checks it, with its texts: the request schema,
the phase, the priority range, then each condition's and action's operator and arguments
(the operators' and actions' own signatures, copied below from Ironic 39.0)."""

from __future__ import annotations

import re
from typing import Any

from services.api.versions import Version
from services.common import validation
from services.common.exceptions import Invalid
from services.common.inspection_rule_ops import ACTIONS, OPERATORS, PLUGIN_DATA_ACTIONS

PHASES = ("main",)
MAX_PRIORITY = 9999
FIELDS = ("uuid", "description", "priority", "sensitive", "phase", "conditions", "actions")
VALIDATION_FAILED = "Validation failed for inspection rule: "


def schema() -> dict[str, Any]:
    """Ironic's create_request_body (schemas/v1/inspection_rule.py)."""
    def operation(ops: list[str], more: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "required": ["op", "args"], "additionalProperties": True,
                "properties": {"op": {"enum": ops}, "args": {"type": ["array", "object"]},
                               "loop": {"type": ["array", "object"]}, **more}}

    conditions = [*OPERATORS, *(f"!{op}" for op in OPERATORS)]
    return {
        "type": "object", "additionalProperties": False, "required": ["actions"],
        "properties": {
            "actions": {"type": "array", "minItems": 1,
                        "items": operation(list(ACTIONS), {})},
            "conditions": {"type": "array", "minItems": 0, "items": operation(
                conditions, {"multiple": {"enum": ["any", "all", "first", "last"]}})},
            "description": {"type": ["string", "null"], "maxLength": 255},
            "phase": {"type": ["string", "null"], "maxLength": 16},
            "priority": {"type": "integer", "minimum": 0},
            "sensitive": {"type": ["boolean", "null"]},
            "uuid": {"type": ["string", "null"]},
        },
    }


def _argument_errors(kind: str, op: str, signature: tuple[tuple[str, ...], tuple[str, ...]],
                     args: Any) -> list[str]:
    required, optional = signature
    if isinstance(args, list):  # Ironic's deprecated positional form
        if len(args) < len(required):
            return [f"Invalid parameters for {kind} operator {op}: Not enough arguments "
                    f"provided. Missing: {', '.join(required[len(args):])}"]
        args = dict(zip((*required, *optional), args, strict=False))
    problems = []
    missing = [name for name in required if name not in args]
    unexpected = sorted(set(args) - set(required) - set(optional))
    if missing:
        problems.append(f"missing required argument(s): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected argument(s): {', '.join(unexpected)}")
    if op in ("matches", "contains") and isinstance(args.get("regex"), str):
        try:
            re.compile(args["regex"])
        except re.error as exc:
            problems.append(f"invalid regular expression: {exc}")
    return [f"Invalid parameters for {kind} operator {op}: {'; '.join(problems)}"] \
        if problems else []


def check(rule: Any, _version: Version) -> dict[str, Any]:
    """The rule's fields, checked (the same at every version); Invalid with Ironic's texts (one
    error, or "Multiple validation errors occurred: ...")."""
    import jsonschema  # here, not at start: a server rarely needs it (enclume-aio's memory)

    if not isinstance(rule, dict):
        raise Invalid(f"{VALIDATION_FAILED}{validation.shown(rule)} is not of type 'object'")
    try:
        jsonschema.validate(rule, schema())
    except jsonschema.ValidationError as exc:
        raise Invalid(f"{VALIDATION_FAILED}{exc.message}") from None
    validation.json_value("inspection rule", rule)
    errors = []
    phase = rule.get("phase") or "main"
    if phase not in PHASES:
        errors.append(f"Invalid phase: {phase}. Valid phases are: {', '.join(PHASES)}")
    if rule.get("priority", 0) > MAX_PRIORITY:
        errors.append("Priority must be between 0 and 9999 for user-defined rules.")
    for condition in rule.get("conditions") or []:
        op = condition["op"].removeprefix("!")
        errors += _argument_errors("condition", op, OPERATORS[op], condition["args"])
    for action in rule["actions"]:
        args = action["args"]
        if action["op"] in PLUGIN_DATA_ACTIONS and isinstance(args, dict):
            args = {**args, "plugin_data": {}}  # Ironic adds it before checking
        elif action["op"] in PLUGIN_DATA_ACTIONS and isinstance(args, list):
            args = [*args, {}]
        errors += _argument_errors("action", action["op"], ACTIONS[action["op"]], args)
    if len(errors) == 1:
        raise Invalid(errors[0])
    if errors:
        raise Invalid(f"Multiple validation errors occurred: {'; '.join(errors)}")
    clean = {"description": rule.get("description"), "priority": rule.get("priority", 0),
             "sensitive": bool(rule.get("sensitive")), "phase": phase,
             "conditions": list(rule.get("conditions") or []), "actions": list(rule["actions"])}
    if rule.get("uuid") is not None:
        clean["uuid"] = validation.uuid_value("uuid", rule["uuid"])
    return clean
