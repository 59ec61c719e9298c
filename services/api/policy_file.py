"""An operator's policy file (``ENCLUME_API_POLICY_FILE``): Ironic's ``policy.yaml``.

oslo.policy's format, YAML or JSON: ``"rule name": "check string"`` (services/api/policy_checks.py).
A rule of Ironic's replaces its default (services/api/policy.py's table); any other name is
added, for the others to reference with ``rule:name`` (an alias such as
``"is_admin": "role:admin"``). Ironic's base rules (``service_role``, ``is_node_owner``,
``admin_api`` ...) are there to reference, as in Ironic. As oslo.policy, a rule Ironic
deprecated in favour of a finer one (``baremetal:node:update`` for
``baremetal:node:update:name``, ...) passes its file override to the finer rules the file
does not override. A rule's scope (system only, system or project) stays Ironic's whatever
its check string says. A file that does not parse, a check string that does not, a rule that
names an unknown rule or a cycle of rules: PolicyFileError (a RuntimeError: the API refuses to
start with it), naming the file, the rule and its line; never Ironic's defaults in silence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import yaml

from services.api import policy, policy_checks
from services.api.policy_checks import CheckSyntaxError, Node

LOG = logging.getLogger("enclume.api.policy")

# Ironic's rules that are no action's: other rules reference them (ironic/common/policy.py).
BASE_RULES = {
    "admin_api": "role:admin or role:administrator",
    "public_api": "is_public_api:True",
    "show_password": "!",
    "show_instance_secrets": "!",
    "service_role": "role:service and project_name:%(config.service_project_name)s",
    "is_member": "(project_domain_id:default or project_domain_id:None) and "
                 "(project_name:demo or project_name:baremetal)",
    "is_observer": "rule:is_member and (role:observer or role:baremetal_observer)",
    "is_admin": "rule:admin_api or (rule:is_member and role:baremetal_admin)",
    "is_node_owner": "project_id:%(node.owner)s",
    "is_node_lessee": "project_id:%(node.lessee)s",
    "is_allocation_owner": "project_id:%(allocation.owner)s",
}
# Base rules Enclume's defaults hold built in (Ironic's system member and reader rules name
# ``rule:service_role``, its agent's lookup and heartbeat ``rule:public_api``): a file's
# override would not reach the defaults, so it is refused rather than half applied.
BUILT_IN = frozenset({"service_role", "public_api"})
# Ironic's rules no request of Enclume's asks: secrets are masked for everyone.
NOT_CONSULTED = frozenset({"show_password", "show_instance_secrets"})
# Ironic's finer rules that replaced a coarser one: the coarser rule and its deprecated check
# string (a file override of the coarser rule equal to it is not passed on).
_OBSERVED = "rule:is_admin or rule:is_observer"
DEPRECATED_FOR: dict[str, tuple[str, str]] = {
    **{f"baremetal:node:get:{field}": ("baremetal:node:get", _OBSERVED) for field in (
        "filter_threshold", "last_error", "reservation", "driver_internal_info",
        "driver_info")},
    **{f"baremetal:node:update:{field}": ("baremetal:node:update", "rule:is_admin")
       for field in ("driver_info", "properties", "chassis_uuid", "instance_uuid", "lessee",
                     "owner", "driver_interfaces", "network_data", "conductor_group", "name",
                     "retired")},
    "baremetal:node:set_boot_device": ("baremetal:node:set_maintenance", "rule:is_admin"),
    "baremetal:node:set_boot_mode": ("baremetal:node:set_power_state", "rule:is_admin"),
    "baremetal:node:set_secure_boot": ("baremetal:node:set_power_state", "rule:is_admin"),
    "baremetal:node:history:get": ("baremetal:node:get", _OBSERVED),
    "baremetal:node:inventory:get": ("baremetal:node:get", _OBSERVED),
    "baremetal:portgroup:list": ("baremetal:portgroup:get", _OBSERVED),
    "baremetal:portgroup:list_all": ("baremetal:portgroup:get", _OBSERVED),
    "baremetal:volume:list_all": ("baremetal:volume:get", _OBSERVED),
    "baremetal:volume:list": ("baremetal:volume:get", _OBSERVED),
    "baremetal:volume:view_target_properties": ("baremetal:volume:update", "rule:is_admin"),
}


class PolicyFileError(RuntimeError):
    """The policy file cannot be used; the message names the file, the rule and its line."""


def load_rules(path: Path) -> policy.RuleTable:
    """The table in force: Ironic's defaults (``policy.RULES``) with the file's rules."""
    overrides = read(path)
    LOG.info("policy file %s: %d rule(s) over Ironic's defaults", path, len(overrides))
    ignored = sorted(NOT_CONSULTED & set(overrides))
    if ignored:
        LOG.warning("policy file %s: Enclume does not consult %s (secrets stay masked for "
                    "everyone)", path, ", ".join(ignored))
    return table(overrides, path)


def read(path: Path) -> dict[str, tuple[Node, int]]:
    """The file's rules: each one's parsed check and its line (from 1)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"policy file {path}: cannot be read ({exc})") from None
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise PolicyFileError(f"policy file {path}: not YAML or JSON: {_where(exc)}") from None
    if document is None:
        return {}
    if not isinstance(document, yaml.MappingNode):
        raise PolicyFileError(f"policy file {path}: expected a mapping of rule names to "
                              "check strings")
    rules: dict[str, tuple[Node, int]] = {}
    for key, value in document.value:
        line = key.start_mark.line + 1
        if not _text(key) or not key.value:
            raise PolicyFileError(f"policy file {path}, line {line}: a rule name must be text")
        name = key.value
        if name in rules:
            raise PolicyFileError(f"policy file {path}, line {line}: rule {name!r} is "
                                  f"defined twice (also line {rules[name][1]})")
        if not _text(value):  # an empty value too: oslo.policy's "anyone", never meant
            raise PolicyFileError(f"policy file {path}, line {line}: rule {name!r} needs a "
                                  'check string ("" allows anyone)')
        try:
            rules[name] = (policy_checks.parse(value.value), line)
        except CheckSyntaxError as exc:
            raise PolicyFileError(f"policy file {path}, line {line}: rule {name!r}: {exc}"
                                  ) from None
    return rules


def table(overrides: Mapping[str, tuple[Node, int]], path: Path) -> policy.RuleTable:
    """Ironic's defaults and base rules, the file's rules over them, checked whole."""
    parsed = {name: policy_checks.parse(text) for name, text in BASE_RULES.items()}
    parsed.update({name: node for name, (node, _) in overrides.items()})
    # Where each rule the file sets was written: its own line or the coarser rule's.
    origins = {name: (name, line) for name, (_, line) in overrides.items()}
    for rule, (coarser, deprecated) in DEPRECATED_FOR.items():
        if rule in overrides or coarser not in overrides:
            continue
        node, line = overrides[coarser]
        if node != policy_checks.parse(deprecated) and node != policy_checks.RuleRef(rule):
            parsed[rule] = node
            origins[rule] = (coarser, line)
    names = set(policy.RULES) | set(parsed)
    for name, (node, line) in overrides.items():
        if name in BUILT_IN:
            raise PolicyFileError(f"policy file {path}, line {line}: rule {name!r} cannot be "
                                  "overridden: Enclume's defaults hold it built in; override "
                                  "the rules that use it instead")
        known = policy_checks.CALLER_FIELDS
        unknown_fields = sorted(policy_checks.caller_fields(node) - known)
        if unknown_fields:
            raise PolicyFileError(f"policy file {path}, line {line}: rule {name!r} compares "
                                  f"{', '.join(unknown_fields)}, which Enclume does not know "
                                  f"of a caller (it knows {', '.join(sorted(known))})")
        unknown = sorted(policy_checks.referenced_rules(node) - names)
        if unknown:
            raise PolicyFileError(f"policy file {path}, line {line}: rule {name!r} references "
                                  f"undefined rule(s) {', '.join(unknown)}")
    _refuse_cycles(parsed, origins, path)
    rules = policy.RuleTable(policy.RULES)
    rules.update({name: policy_checks.FileRule(node, rules) for name, node in parsed.items()})
    return rules


def _refuse_cycles(parsed: Mapping[str, Node], origins: Mapping[str, tuple[str, int]],
                   path: Path) -> None:
    """A rule that reaches itself through ``rule:`` would never be answered."""
    for start, (written, line) in origins.items():
        seen: set[str] = set()
        pending = [start]
        while pending:
            node = parsed.get(pending.pop())
            if node is None:
                continue  # one of the defaults: they reference nothing
            for referenced in policy_checks.referenced_rules(node) - seen:
                if referenced == start:
                    as_written = "" if written == start else f" (as {written!r})"
                    raise PolicyFileError(f"policy file {path}, line {line}: rule "
                                          f"{start!r}{as_written} references itself through "
                                          "rule:")
                seen.add(referenced)
                pending.append(referenced)


def _text(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str"


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem
