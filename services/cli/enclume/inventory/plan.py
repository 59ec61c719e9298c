"""What enrolling an inventory would change: node specs compared with the API's nodes and ports.

Nodes are matched by name. A new node is created with its ports; an existing one gets a JSON
patch of only the fields that differ (mapping fields key by key: keys the file does not give
are left alone, keys it sets to null are removed), and its ports are created, updated and
deleted to match the file when the file lists them.

The API shows secrets (BMC passwords ...) as ``******``, so they cannot be compared here: they
go in ``secret_ops``, sent in the node's patch; the API compares them with what it holds and
changes nothing when they are equal. It never says whether they differed, so ``apply`` reports
such a node unchanged with its secrets re-sent, never updated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from services.cli.enclume.inventory.model import InventoryInvalid, NodeSpec, Problem
from services.common.secrets import MASK, is_secret_key

Kind = Literal["create", "update", "unchanged"]


@dataclass
class PortUpdate:
    uuid: str
    address: str
    ops: list[dict[str, Any]]


@dataclass
class NodeChange:
    """What enrolling does to one node of the inventory."""

    spec: NodeSpec
    kind: Kind
    node_uuid: str | None = None
    node_ops: list[dict[str, Any]] = field(default_factory=list)
    secret_ops: list[dict[str, Any]] = field(default_factory=list)
    port_creates: list[dict[str, Any]] = field(default_factory=list)
    port_updates: list[PortUpdate] = field(default_factory=list)
    port_deletes: list[tuple[str, str]] = field(default_factory=list)  # (uuid, address)
    # What differs, for people: "driver_info.ipmi_address", "port 52:54:00:00:00:01 added" ...
    changed: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def needs_request(self) -> bool:
        """Whether applying sends anything (an unchanged node may still have secrets to give the
        API to compare)."""
        return self.kind != "unchanged" or bool(self.secret_ops)


@dataclass
class Plan:
    changes: list[NodeChange]

    def of_kind(self, kind: Kind) -> list[NodeChange]:
        return [change for change in self.changes if change.kind == kind]

    def counts(self) -> dict[Kind, int]:
        return {kind: len(self.of_kind(kind)) for kind in ("create", "update", "unchanged")}


def make_plan(specs: list[NodeSpec], nodes: Iterable[Mapping[str, Any]],
              ports: Iterable[Mapping[str, Any]]) -> Plan:
    """The plan for ``specs`` given the API's ``nodes`` and ``ports`` (detailed documents).

    InventoryInvalid when the plan cannot be carried out: a MAC address that is a port of
    another node, a UUID that belongs to another node."""
    by_uuid = {node["uuid"]: node for node in nodes}
    by_name = {node["name"]: node for node in by_uuid.values() if node.get("name")}
    ports_by_address = {port["address"]: port for port in ports}
    ports_by_node: dict[str, list[Mapping[str, Any]]] = {}
    for port in ports_by_address.values():
        ports_by_node.setdefault(port["node_uuid"], []).append(port)

    problems: list[Problem] = []
    changes = []
    for spec in specs:
        existing = by_name.get(spec.name)
        problems.extend(_conflicts(spec, existing, by_uuid, ports_by_address))
        if existing is None:
            changes.append(NodeChange(
                spec, "create", changed=_created(spec),
                port_creates=[{"address": port.address, **port.fields}
                              for port in spec.ports or []]))
        else:
            changes.append(_compare(spec, existing, ports_by_node.get(existing["uuid"], [])))
    if problems:
        raise InventoryInvalid(problems)
    return Plan(changes)


def _conflicts(spec: NodeSpec, existing: Mapping[str, Any] | None,
               by_uuid: Mapping[str, Mapping[str, Any]],
               ports_by_address: Mapping[str, Mapping[str, Any]]) -> list[Problem]:
    entry = spec.entry
    problems = []
    wanted_uuid = spec.fields.get("uuid")
    if wanted_uuid:
        if existing is not None and existing["uuid"] != wanted_uuid:
            problems.append(entry.problem("uuid", f"node {spec.name} exists with UUID "
                                                  f"{existing['uuid']}"))
        other = by_uuid.get(wanted_uuid)
        if existing is None and other is not None:
            problems.append(entry.problem("uuid", f"the UUID belongs to node "
                                                  f"{other.get('name') or wanted_uuid}"))
    own_uuid = existing["uuid"] if existing is not None else None
    for port in spec.ports or []:
        holder = ports_by_address.get(port.address)
        if holder is not None and holder["node_uuid"] != own_uuid:
            owner = by_uuid.get(holder["node_uuid"], {})
            problems.append(entry.problem(
                port.path,
                f"MAC {port.address} is a port of another node, "
                f"{owner.get('name') or holder['node_uuid']}: delete that port first"))
    return problems


def _created(spec: NodeSpec) -> list[str]:
    count = len(spec.ports or [])
    return [f"{count} port{'s' if count != 1 else ''}"] if count else []


def _compare(spec: NodeSpec, node: Mapping[str, Any],
             ports: list[Mapping[str, Any]]) -> NodeChange:
    change = NodeChange(spec, "unchanged", node_uuid=node["uuid"])
    for name, value in spec.fields.items():
        if name != "uuid" and node.get(name) != value:
            change.node_ops.append({"op": "replace", "path": f"/{name}", "value": value})
            change.changed.append(name)
    for name, wanted in spec.maps.items():
        _compare_map(change, name, wanted, node.get(name) or {})
    if spec.labels:
        extra = node.get("extra") or {}
        labels = extra.get("labels")
        if isinstance(labels, dict):
            _compare_map(change, "extra/labels", spec.labels, labels)
        else:
            given = {k: v for k, v in spec.labels.items() if v is not None}
            if given:
                change.node_ops.append({"op": "add", "path": "/extra/labels", "value": given})
                change.changed.extend(f"labels.{key}" for key in given)
    if spec.ports is not None:
        _compare_ports(change, spec, ports)
    if change.node_ops or change.port_creates or change.port_updates or change.port_deletes:
        change.kind = "update"
    return change


def _compare_map(change: NodeChange, path: str, wanted: Mapping[str, Any],
                 stored: Mapping[str, Any]) -> None:
    shown = path.replace("extra/labels", "labels").replace("/", ".")
    for key, value in wanted.items():
        pointer = f"/{path}/{_escape(key)}"
        if value is None:
            if key in stored:
                change.node_ops.append({"op": "remove", "path": pointer})
                change.changed.append(f"{shown}.{key} removed")
        elif key not in stored:
            change.node_ops.append({"op": "add", "path": pointer, "value": value})
            change.changed.append(f"{shown}.{key}")
        elif is_secret_key(key) and stored[key] == MASK and value != MASK:
            change.secret_ops.append({"op": "replace", "path": pointer, "value": value})
        elif stored[key] != value:
            change.node_ops.append({"op": "replace", "path": pointer, "value": value})
            change.changed.append(f"{shown}.{key}")


def _compare_ports(change: NodeChange, spec: NodeSpec, ports: list[Mapping[str, Any]]) -> None:
    stored = {port["address"]: port for port in ports}
    wanted = {port.address for port in spec.ports or []}
    for address, port in sorted(stored.items()):
        if address not in wanted:
            change.port_deletes.append((port["uuid"], address))
            change.changed.append(f"port {address} deleted")
    for port in spec.ports or []:
        have = stored.get(port.address)
        if have is None:
            change.port_creates.append({"address": port.address, **port.fields})
            change.changed.append(f"port {port.address} added")
            continue
        ops = [{"op": "replace", "path": f"/{name}", "value": value}
               for name, value in port.fields.items() if have.get(name) != value]
        if ops:
            change.port_updates.append(PortUpdate(have["uuid"], port.address, ops))
            fields = ", ".join(op["path"][1:] for op in ops)
            change.changed.append(f"port {port.address} {fields}")


def _escape(key: str) -> str:
    """A key as one JSON pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")
