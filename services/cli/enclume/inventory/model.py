"""What the inventory modules pass each other: problems with their line, entries, node specs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class Problem:
    """Something wrong in the inventory, at a line of a file. Never quotes a secret."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:  # the file as a whole (cannot be read, wrong kind)
            return f"{self.source}: {self.message}"
        return f"{self.source}:{self.line}: {self.message}"


class InventoryInvalid(Exception):
    """The inventory cannot be enrolled; ``problems`` says every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the inventory")
        self.problems = sorted(problems)


@dataclass
class RawEntry:
    """One machine as the file gives it: plain values, and the line of each field.

    ``lines`` maps dotted paths (``driver_info.ipmi_address``, ``ports[1].address``) to lines.
    """

    source: str
    line: int
    fields: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, path: str) -> int:
        """The line of ``path``, else of its nearest parent that has one, else the entry's."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.line

    def problem(self, path: str, message: str) -> Problem:
        name = self.fields.get("name")
        who = f"node {name}: " if isinstance(name, str) and name else ""
        where = f"{path}: " if path else ""
        return Problem(self.source, self.line_of(path), f"{who}{where}{message}")


@dataclass
class PortSpec:
    """A port the node must have: its MAC and the fields the file gives (others are left alone).

    ``fields`` may hold ``pxe_enabled``, ``local_link_connection``, ``physical_network``,
    ``extra``.
    """

    address: str
    fields: dict[str, Any] = field(default_factory=dict)
    path: str = ""  # where the file gives its address: macs[1], ports[0].address


@dataclass
class NodeSpec:
    """A node as the inventory wants it, checked and normalised.

    ``fields``: top-level node fields to set (driver, resource_class, ``*_interface`` ...).
    ``maps``: driver_info, properties, extra: key -> value, None meaning "remove the key".
    ``labels``: extra["labels"] keys (None: remove); room is the label "room".
    ``ports``: the node's complete set of ports, or None to leave its ports alone.
    """

    name: str
    entry: RawEntry
    fields: dict[str, Any] = field(default_factory=dict)
    maps: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, str | None] = field(default_factory=dict)
    ports: list[PortSpec] | None = None

    @property
    def driver(self) -> str | None:
        value = self.fields.get("driver")
        return value if isinstance(value, str) else None

    def create_body(self) -> dict[str, Any]:
        """The POST /v1/nodes body of this node (keys set to None are left out)."""
        body: dict[str, Any] = {"name": self.name, **self.fields}
        for name, values in self.maps.items():
            kept = {k: v for k, v in values.items() if v is not None}
            if kept:
                body[name] = kept
        labels = {k: v for k, v in self.labels.items() if v is not None}
        if labels:
            body["extra"] = {**body.get("extra", {}), "labels": labels}
        return body
