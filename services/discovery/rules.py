"""Discovery rules: what a newly discovered node gets, chosen by conditions on its inventory.

The file (``ENCLUME_DISCOVERY_RULES_FILE``, YAML, docs/discovery.md)::

    rules:
      - name: classroom B12               # optional, for messages and the node history
        match:                            # every condition must hold; none: always
          mac_prefix: ["52:54:00:12"]
          memory_mb: {min: 4096}
        set:                              # at least one action
          driver: wol
          driver_info: {wol_host: "10.12.255.255"}
          labels: {room: B12}
          name: "b12-{mac_hex}"

Semantics: every rule that matches applies, in file order. ``driver``, ``resource_class`` and
``name`` of a later rule replace an earlier one's; ``driver_info``, ``labels`` and
``properties`` are merged key by key, a later rule's key winning. A rule whose templates name a
value the inventory lacks (``{bmc_address}`` without a BMC address) does not apply. Rules shape
new nodes only: a known node is updated from its inventory as inspection would (when the
conductor allows it: services/conductor/discovery.py), never re-ruled. Addresses the inventory
claims may sit next to a secret only when confined by a network condition
(``unconfined_addresses``; docs/discovery.md, Security).

The file is read and checked once, when the API starts; every problem is reported with the
file, the rule and its line, and the API refuses to start.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from services.common.secrets import mask
from services.common.validation import FIELD_LIMITS, is_valid_name
from services.common.yaml_errors import describe_yaml_error
from services.discovery import templates
from services.discovery.facts import ADDRESS_VARIABLES, VARIABLES, Facts
from services.discovery.rule_schema import NAME_CHARS, Rule, RulesFile

if TYPE_CHECKING:
    import yaml

# driver_info keys that say where the conductor connects (and sends the credentials).
_WHERE_KEY = re.compile(r"(address|host|hostname|url|uri|endpoint|server)$", re.IGNORECASE)
MAX_ERRORS_SHOWN = 10


class RulesError(RuntimeError):
    """The rules file is unusable; the message names the file, the rule and the line."""


@dataclass(frozen=True)
class Outcome:
    """What the matching rules give a new node."""

    driver: str | None = None
    driver_info: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    resource_class: str | None = None
    name: str | None = None
    applied: tuple[str, ...] = ()

    def node_fields(self, default_driver: str) -> dict[str, Any]:
        """Fields of the node to create (POST /v1/nodes names)."""
        fields: dict[str, Any] = {"driver": self.driver or default_driver,
                                  "driver_info": self.driver_info,
                                  "properties": self.properties}
        if self.labels:
            fields["extra"] = {"labels": self.labels}
        if self.resource_class is not None:
            fields["resource_class"] = self.resource_class
        if self.name:
            fields["name"] = self.name
        return fields


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    source: Path | None = None

    def evaluate(self, facts: Facts) -> Outcome:
        values = facts.variables()
        outcome: dict[str, Any] = {"driver_info": {}, "labels": {}, "properties": {}}
        applied = []
        for index, rule in enumerate(self.rules, start=1):
            if not rule.applies(facts):
                continue
            applied.append(rule.name or f"rule {index}")
            actions = rule.actions
            for key in ("driver", "resource_class"):
                if getattr(actions, key) is not None:
                    outcome[key] = getattr(actions, key)
            for key in ("driver_info", "labels", "properties"):
                if getattr(actions, key) is not None:
                    outcome[key] = {**outcome[key],
                                    **templates.render_all(getattr(actions, key), values)}
            if actions.name is not None:
                outcome["name"] = node_name(templates.render(actions.name, values))
        return Outcome(**outcome, applied=tuple(applied))


def node_name(rendered: str) -> str | None:
    """A usable node name from a rendered template: characters a name cannot hold (from
    inventory values such as a product name) become ``-``; a UUID-like result is no name."""
    name = NAME_CHARS.sub("-", rendered)[:FIELD_LIMITS["name"]]
    return name if is_valid_name(name) else None


# -- reading the file ----------------------------------------------------------------------


def load(path: Path, enabled_drivers: Iterable[str]) -> RuleSet:
    """Read and check the rules file; RulesError listing every problem with rule and line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise RulesError(f"cannot read the discovery rules file {path}: "
                         f"{exc.strerror or exc}") from None
    import yaml  # here, not at start: PyYAML costs a server ~1 MiB of RSS it rarely needs

    try:
        data = yaml.safe_load(text)
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        problem = describe_yaml_error(exc)
        where = f", line {problem.line}" if problem.line else ""
        raise RulesError(f"{path}{where}: not valid YAML: {problem.description}") from None
    if not isinstance(data, dict) or "rules" not in data:
        raise RulesError(f"{path}: expected a mapping with a `rules` list (see "
                         f"docs/discovery.md)")
    try:
        parsed = RulesFile.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(path, data, tree, list(error["loc"]), _message(error))
                    for error in exc.errors()]
        raise RulesError(_joined(problems)) from None
    enabled = set(enabled_drivers)
    problems = [
        _describe(path, data, tree, ["rules", index, "set", "driver"],
                  f"driver {rule.actions.driver!r} is not an enabled hardware type "
                  f"(enabled: {', '.join(sorted(enabled))})")
        for index, rule in enumerate(parsed.rules)
        if rule.actions.driver is not None and rule.actions.driver not in enabled]
    problems += [_describe(path, data, tree, loc, message)
                 for loc, message in unconfined_addresses(parsed.rules)]
    if problems:
        raise RulesError(_joined(problems))
    return RuleSet(tuple(parsed.rules), path)


def secret_families(parsed: list[Rule]) -> dict[str, int]:
    """The driver_info key families (``ipmi_``, ``redfish_``, ``wol_`` ...: the prefix a driver
    reads its keys by) in which some rule sets a secret (what ``secrets.mask`` would hide: a
    secret-named key or a URL with a password), each with the first such rule's number."""
    found: dict[str, int] = {}
    for number, rule in enumerate(parsed, start=1):
        for key, value in (rule.actions.driver_info or {}).items():
            if mask({key: value}) != {key: value}:
                found.setdefault(_family(key), number)
    return found


def _family(key: str) -> str:
    return key.split("_", 1)[0].lower() + "_" if "_" in key else ""


def unconfined_addresses(parsed: list[Rule]) -> list[tuple[list[Any], str]]:
    """Rules that could send a BMC password to an address the machine claims.

    The inventory is posted to a public endpoint: its ``bmc_address`` may be any host. Matching
    rules are merged, so a general rule's ``ipmi_password`` joins a specific rule's
    ``ipmi_address``: when any rule sets a secret in a key family, no rule may template an
    address variable into a key of that family unless its own ``match`` confines the address to
    the operator's networks (``bmc_network``/``ipv4_network``), and no other inventory value may
    build a where-to-connect key of it (``*_address``, ``*_host``, ``*_url`` ...). A key
    without a family (no ``_``) counts as in every family."""
    secrets = secret_families(parsed)
    if not secrets:
        return []
    found = []
    for index, rule in enumerate(parsed):
        for key, value in (rule.actions.driver_info or {}).items():
            family = _family(key)
            number = secrets.get(family) if family else min(secrets.values())
            if number is None:
                continue
            where_secret = f"rule {number} sets a password or other secret of {family or 'it'}*"
            loc = ["rules", index, "set", "driver_info", key]
            for variable in sorted(templates.variables_in(value, VARIABLES)):
                if variable in ADDRESS_VARIABLES and not rule.match.confines(variable):
                    condition = ADDRESS_VARIABLES[variable]
                    found.append((loc, (
                        f"{{{variable}}} comes from the machine's own inventory and {where_secret}"
                        f": any caller could have that secret sent to a host of its choosing. "
                        f"Confine it with `match: {{{condition}: [<your networks in CIDR>]}}` in "
                        f"this rule (docs/discovery.md, Security)")))
                elif variable not in ADDRESS_VARIABLES and _WHERE_KEY.search(key):
                    found.append((loc, (
                        f"{{{variable}}} comes from the machine's own inventory and cannot name "
                        f"where to connect while {where_secret}; only {{bmc_address}} confined "
                        f"by bmc_network (or {{ipv4_address}} by ipv4_network) may")))
    return found


def _message(error: Any) -> str:
    # Never the input value: a rule's driver_info may hold a password.
    if error.get("type") == "extra_forbidden":
        return "unknown key (the keys are listed in docs/discovery.md)"
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _joined(problems: list[str]) -> str:
    shown = problems[:MAX_ERRORS_SHOWN]
    more = len(problems) - len(shown)
    return "\n".join(shown + ([f"... and {more} more"] if more > 0 else []))


def _describe(path: Path, data: Any, tree: yaml.Node | None, loc: list[Any],
              message: str) -> str:
    line = _line_of(tree, loc)
    where = f"{path}"
    fields = loc
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        index = loc[1]
        rule = data["rules"][index] if isinstance(data.get("rules"), list) else None
        label = rule.get("name") if isinstance(rule, dict) else None
        where += f", rule {index + 1}" + (f" ({label!r})" if isinstance(label, str) else "")
        fields = loc[2:]
    if line is not None:
        where += f", line {line}"
    dotted = ".".join(str(part) for part in fields)
    return f"{where}: {dotted + ': ' if dotted else ''}{message}"


def _line_of(tree: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the deepest YAML node along ``loc`` that exists."""
    import yaml
    node, line = tree, None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and (
                0 <= part < len(node.value)):
            node = node.value[part]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line
