"""Checking node specifications against the server's drivers: the driver exists, its required
driver_info keys are there, no misspelt key, the interfaces are enabled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.cli.enclume.inventory import schema
from services.cli.enclume.inventory.model import NodeSpec, Problem
from services.common.driver_properties import required

# How close an unknown driver_info key must be to a known one to be refused as misspelt
# ("ipmi_user" for ipmi_username is; a key of the site's own such as "rack_position" is not).
MISSPELT_CUTOFF = 0.8


@dataclass(frozen=True)
class DriverFacts:
    """What the server says of one driver (hardware type)."""

    name: str
    # driver_info key -> description; required ones end in "Required." (Ironic's convention)
    properties: Mapping[str, str] = field(default_factory=dict)
    # interface ("deploy") -> the implementations enabled for this driver
    interfaces: Mapping[str, list[str]] = field(default_factory=dict)


def check_with_server(specs: list[NodeSpec], drivers: Mapping[str, DriverFacts],
                      existing: Mapping[str, Mapping[str, Any]]) -> list[Problem]:
    """Problems of ``specs`` given the server's ``drivers`` and its nodes by name, ``existing``
    (an existing node may already hold a required driver_info key the file leaves out)."""
    problems: list[Problem] = []
    for spec in specs:
        entry = spec.entry
        driver = spec.driver
        if driver is None:
            continue
        facts = drivers.get(driver)
        if facts is None:
            problems.append(entry.problem("driver", f"unknown driver {driver!r}; the server has "
                                                    f"{', '.join(sorted(drivers)) or 'none'}"
                                                    f"{schema.did_you_mean(driver, drivers)}"))
            continue
        info = spec.maps.get("driver_info", {})
        stored = (existing.get(spec.name) or {}).get("driver_info") or {}
        for key in required(dict(facts.properties)):
            value = info[key] if key in info else stored.get(key)
            if value in (None, ""):
                problems.append(entry.problem("driver_info",
                                              f"{key} is required by driver {driver}"))
        for key in info:
            if key not in facts.properties and facts.properties:
                # Unknown keys are allowed (Ironic allows them) unless they look misspelt.
                hint = schema.did_you_mean(key, facts.properties, MISSPELT_CUTOFF)
                if hint:
                    problems.append(entry.problem(f"driver_info.{key}",
                                                  f"unknown key for driver {driver}{hint}"))
        for name in schema.INTERFACE_FIELDS:
            chosen = spec.fields.get(name)
            enabled = facts.interfaces.get(name.removesuffix("_interface"))
            if chosen is not None and enabled and chosen not in enabled:
                problems.append(entry.problem(
                    name, f"{chosen!r} is not enabled for driver {driver}; it has "
                          f"{', '.join(enabled)}{schema.did_you_mean(chosen, enabled)}"))
    return problems
