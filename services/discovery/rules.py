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

import fnmatch
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from services.common.macs import parse_mac
from services.common.secrets import mask
from services.common.validation import FIELD_LIMITS, is_valid_name
from services.common.yaml_errors import describe_yaml_error
from services.discovery import templates
from services.discovery.facts import ADDRESS_VARIABLES, VARIABLES, Facts

# What a node name cannot hold (the complement of validation.NAME_RE's characters).
NAME_CHARS = re.compile(r"[^a-zA-Z0-9\-._~]")
_MAC_PREFIX = re.compile(r"^([0-9a-f]{2}:){0,5}[0-9a-f]{1,2}$")
# driver_info keys that say where the conductor connects (and sends the credentials).
_WHERE_KEY = re.compile(r"(address|host|hostname|url|uri|endpoint|server)$", re.IGNORECASE)
MAX_ERRORS_SHOWN = 10


class RulesError(RuntimeError):
    """The rules file is unusable; the message names the file, the rule and the line."""


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _json_value(value: Any, where: str) -> Any:
    """Refuse what YAML can hold but a node field cannot (dates, sets, non-string keys)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: keys must be strings, not {key!r}")
            _json_value(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _json_value(item, where)
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise ValueError(f"{where}: {type(value).__name__} values are not allowed (quote it)")
    return value


class Range(BaseModel):
    """A number, or ``{min: N, max: M}`` (both inclusive, either may be left out)."""

    model_config = ConfigDict(extra="forbid")
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"min": value, "max": value}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self

    def holds(self, value: int) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Match(BaseModel):
    """Conditions on the inventory; all must hold. Text conditions are lists of glob patterns
    (``*``, ``?``, ``[...]``), case-insensitive; one of the list must match."""

    model_config = ConfigDict(extra="forbid")
    mac: list[str] | None = None  # any interface has one of these MACs
    mac_prefix: list[str] | None = None  # any interface's MAC starts with one of these
    interface_name: list[str] | None = None  # any interface's name matches
    system_vendor: list[str] | None = None
    system_product: list[str] | None = None
    system_serial: list[str] | None = None
    cpu_arch: list[str] | None = None
    boot_mode: Literal["bios", "uefi"] | None = None
    cpus: Range | None = None
    memory_mb: Range | None = None
    local_gb: Range | None = None
    has_bmc: bool | None = None  # the inventory has a bmc_address
    bmc_network: list[str] | None = None  # the bmc_address lies in one of these CIDRs
    ipv4_network: list[str] | None = None  # the booting NIC's ipv4_address lies in one

    _to_list = field_validator("mac", "mac_prefix", "interface_name", "system_vendor",
                               "system_product", "system_serial", "cpu_arch", "bmc_network",
                               "ipv4_network", mode="before")(_listed)

    @field_validator("bmc_network", "ipv4_network")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        networks, bad = [], []
        for value in values:
            try:
                networks.append(str(ipaddress.ip_network(value.strip(), strict=True)))
            except ValueError:
                bad.append(value)
        if bad:
            raise ValueError(f"not networks in CIDR notation with the host bits zero (such as "
                             f"10.9.0.0/24): {', '.join(map(repr, bad))}")
        if not networks:
            raise ValueError("give at least one network")
        return networks

    @field_validator("mac")
    @classmethod
    def _macs(cls, values: list[str]) -> list[str]:
        parsed = [parse_mac(value) for value in values]
        bad = [value for value, mac in zip(values, parsed, strict=True) if mac is None]
        if bad:
            raise ValueError(f"not MAC addresses: {', '.join(map(repr, bad))}")
        return [mac for mac in parsed if mac]

    @field_validator("mac_prefix")
    @classmethod
    def _prefixes(cls, values: list[str]) -> list[str]:
        normal = [value.lower().replace("-", ":") for value in values]
        bad = [value for value, n in zip(values, normal, strict=True) if not _MAC_PREFIX.match(n)]
        if bad:
            raise ValueError(f"not MAC prefixes (hex pairs such as 52:54:00): "
                             f"{', '.join(map(repr, bad))}")
        return normal

    def holds(self, facts: Facts) -> bool:
        checks = (
            self.mac is None or bool(set(self.mac) & set(facts.macs)),
            self.mac_prefix is None or any(mac.startswith(prefix) for mac in facts.macs
                                           for prefix in self.mac_prefix),
            self.interface_name is None or any(_glob(name, self.interface_name)
                                               for name in facts.interface_names),
            _text_holds(self.system_vendor, facts.system_vendor),
            _text_holds(self.system_product, facts.system_product),
            _text_holds(self.system_serial, facts.system_serial),
            _text_holds(self.cpu_arch, facts.cpu_arch),
            self.boot_mode is None or self.boot_mode == facts.boot_mode,
            self.cpus is None or self.cpus.holds(facts.cpus),
            self.memory_mb is None or self.memory_mb.holds(facts.memory_mb),
            self.local_gb is None or self.local_gb.holds(facts.local_gb),
            self.has_bmc is None or self.has_bmc == (facts.bmc_address is not None),
            _in_networks(self.bmc_network, facts.bmc_address),
            _in_networks(self.ipv4_network, facts.boot_ipv4),
        )
        return all(checks)

    def confines(self, variable: str) -> bool:
        """Whether this match holds only when the address ``variable`` is in a network the
        operator named (ADDRESS_VARIABLES: bmc_address -> bmc_network ...)."""
        return getattr(self, ADDRESS_VARIABLES[variable]) is not None


def _in_networks(networks: list[str] | None, address: str | None) -> bool:
    if networks is None:
        return True
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(network) for network in networks)


def _glob(value: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(value.lower(), pattern.lower()) for pattern in patterns)


def _text_holds(patterns: list[str] | None, value: str | None) -> bool:
    return patterns is None or (value is not None and _glob(value, patterns))


class Actions(BaseModel):
    """What a matching rule gives the new node. Strings may hold ``{variables}``."""

    model_config = ConfigDict(extra="forbid")
    driver: str | None = None
    driver_info: dict[str, Any] | None = None
    labels: dict[str, str] | None = None  # extra["labels"]; the room is the label "room"
    properties: dict[str, Any] | None = None
    resource_class: str | None = Field(default=None, max_length=FIELD_LIMITS["resource_class"])
    name: str | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _label_text(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        clean = {}
        for key, item in value.items():
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise ValueError(f"label {key!r} must be a text (or a number), not "
                                 f"{type(item).__name__}")
            clean[key] = str(item)
        return clean

    @field_validator("driver_info", "properties")
    @classmethod
    def _plain_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        _json_value(value, "value")
        json.dumps(value)
        return value

    @field_validator("name")
    @classmethod
    def _name_chars(cls, value: str) -> str:
        literal = re.sub(r"\{[^{}]*\}", "", value.replace("{{", "").replace("}}", ""))
        if NAME_CHARS.search(literal):
            raise ValueError(f"node names are letters, digits and -._~ only: {value!r}")
        return value

    _needs: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @model_validator(mode="after")
    def _something_known(self) -> Actions:
        if not self.model_fields_set:
            raise ValueError("a rule needs at least one action")
        templated = {key: getattr(self, key) for key in ("driver_info", "labels", "properties",
                                                         "name") if getattr(self, key) is not None}
        self._needs = frozenset(templates.variables_in(templated, VARIABLES))
        return self

    @property
    def needs(self) -> frozenset[str]:
        """The inventory values the templates of these actions use."""
        return self._needs


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str | None = None
    match: Match = Field(default_factory=Match)
    actions: Actions = Field(alias="set")

    def applies(self, facts: Facts) -> bool:
        values = facts.variables()
        return self.match.holds(facts) and all(values.get(name) is not None
                                               for name in self.actions.needs)


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule]


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
