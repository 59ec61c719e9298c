"""The rules a PATCH needs, as Ironic picks them from the patched paths: a node's
(NodesController._authorize_patch_and_get_node) and a runbook's
(RunbooksController._authorize_patch_and_get_runbook). Each path with a rule of its own needs
it; any other path, or an empty patch, needs the generic update rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_NODE_RULES = (
    ("/instance_info", "baremetal:node:update_instance_info"),
    ("/extra", "baremetal:node:update_extra"),
    ("/driver_info", "baremetal:node:update:driver_info"),
    ("/properties", "baremetal:node:update:properties"),
    ("/chassis_uuid", "baremetal:node:update:chassis_uuid"),
    ("/instance_uuid", "baremetal:node:update:instance_uuid"),
    ("/instance_name", "baremetal:node:update_instance_info"),
    ("/lessee", "baremetal:node:update:lessee"),
    ("/owner", "baremetal:node:update:owner"),
    ("/driver", "baremetal:node:update:driver_interfaces"),
    ("/network_data", "baremetal:node:update:network_data"),
    ("/conductor_group", "baremetal:node:update:conductor_group"),
    ("/name", "baremetal:node:update:name"),
    ("/retired", "baremetal:node:update:retired"),
    ("/shard", "baremetal:node:update:shard"),
    ("/parent_node", "baremetal:node:update:parent_node"),
    ("/disable_power_off", "baremetal:node:update:disable_power_off"),
)
_RUNBOOK_RULES = (
    ("/owner", "baremetal:runbook:update:owner"),
    ("/public", "baremetal:runbook:update:public"),
)
_FALSE = ("false", "0", "no", "off", "f", "n")


def node_patch_rules(patch: Iterable[Any]) -> list[str]:
    return _patch_rules(patch, _NODE_RULES, "baremetal:node:update", _node_rule_of)


def runbook_patch_rules(patch: Iterable[Any]) -> list[str]:
    return _patch_rules(patch, _RUNBOOK_RULES, "baremetal:runbook:update")


def _node_rule_of(path: str, operation: dict[str, Any]) -> str | None:
    """A node's paths whose rule is not by their prefix."""
    if path.endswith("_interface"):
        return "baremetal:node:update:driver_interfaces"
    if path.startswith("/automated_clean") and str(operation.get("value")).lower() in _FALSE:
        return "baremetal:node:disable_cleaning"
    return None


def _patch_rules(patch: Iterable[Any], by_prefix: tuple[tuple[str, str], ...], generic: str,
                 rule_of: Callable[[str, dict[str, Any]], str | None] = lambda *_: None
                 ) -> list[str]:
    rules: list[str] = []
    generic_needed = False
    for operation in patch:
        values = operation if isinstance(operation, dict) else {}
        path = str(values.get("path", ""))
        rule = next((name for prefix, name in by_prefix if path.startswith(prefix)), None)
        rule = rule or rule_of(path, values)
        if rule is None:
            generic_needed = True
        else:
            rules.append(rule)
    if generic_needed or not rules:
        rules.append(generic)
    return rules
