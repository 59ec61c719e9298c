"""Checking inventory entries into node specifications, before anything is written.

``validate_entries`` checks each entry alone and the file as a whole (names and MACs given
twice); ``check_with_server`` then checks them against the server's drivers (the driver exists,
its required driver_info keys are there, no misspelt key, the interfaces are enabled).
Every problem names its file and line; values of secret keys are never quoted.
"""

from __future__ import annotations

from services.cli.enclume.inventory.entry_check import EntryCheck
from services.cli.enclume.inventory.model import InventoryInvalid, NodeSpec, Problem, RawEntry
from services.cli.enclume.inventory.server_check import (  # noqa: F401 (checks' one entry)
    DriverFacts,
    check_with_server,
)


def validate_entries(entries: list[RawEntry]) -> list[NodeSpec]:
    """The node specifications of ``entries``; InventoryInvalid listing every problem."""
    specs, problems = check_entries(entries)
    if problems:
        raise InventoryInvalid(problems)
    return specs


def check_entries(entries: list[RawEntry]) -> tuple[list[NodeSpec], list[Problem]]:
    """A specification per entry (what could be made of it) and every problem found; a
    caller may go on checking the specifications (against the server) to list more."""
    problems: list[Problem] = []
    specs = []
    for entry in entries:
        check = EntryCheck(entry)
        specs.append(check.run())
        problems.extend(check.problems)
    problems.extend(_repeated(specs))
    return specs, problems


def _repeated(specs: list[NodeSpec]) -> list[Problem]:
    """Names, UUIDs and MAC addresses given for more than one node of the file."""
    problems = []
    names: dict[str, NodeSpec] = {}
    uuids: dict[str, NodeSpec] = {}
    macs: dict[str, NodeSpec] = {}
    for spec in specs:
        entry = spec.entry
        if spec.name:
            first = names.setdefault(spec.name, spec)
            if first is not spec:
                problems.append(entry.problem("name", f"the name is already used on line "
                                                      f"{first.entry.line}"))
        node_uuid = spec.fields.get("uuid")
        if node_uuid:
            first = uuids.setdefault(node_uuid, spec)
            if first is not spec:
                problems.append(entry.problem("uuid", f"the UUID is already used on line "
                                                      f"{first.entry.line}"))
        for port in spec.ports or []:
            first = macs.setdefault(port.address, spec)
            if first is not spec:
                problems.append(entry.problem(
                    port.path,
                    f"MAC {port.address} is also given for node {first.name or '?'} on line "
                    f"{first.entry.line}"))
    return problems
