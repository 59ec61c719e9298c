"""The schema of a discovery rules file: a rule's conditions (``match``) and actions (``set``),
checked with pydantic when the file is read (services/discovery/rules.py)."""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from services.common.macs import parse_mac
from services.common.validation import FIELD_LIMITS
from services.discovery import templates
from services.discovery.facts import ADDRESS_VARIABLES, VARIABLES, Facts

# What a node name cannot hold (the complement of validation.NAME_RE's characters).
NAME_CHARS = re.compile(r"[^a-zA-Z0-9\-._~]")
_MAC_PREFIX = re.compile(r"^([0-9a-f]{2}:){0,5}[0-9a-f]{1,2}$")

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
