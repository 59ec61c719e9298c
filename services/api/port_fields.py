"""What API 1.94 to 1.106 add to ports and port groups, as Ironic gates it:

- ports' ``description`` (1.97), ``vendor`` (1.100), ``category`` (1.101): free texts of
  Ironic's lengths; given below their version, Ironic's 406;
- a port created on ``node_ident``, a node's UUID or name (1.94; 406 below), instead of
  ``node_uuid``;
- port groups' ``physical_network`` (1.102) and ``category`` (1.103): accepted at every
  version as Ironic's schema does, shown from theirs;
- ports' ``available_for_dynamic_portgroup`` (1.111, default true; 406 below) and port
  groups' ``dynamic_portgroup`` (1.111, default false): stored and shown, no trait-based
  networking reads them;
- the ``description_contains`` and ``conductor_groups`` filters of ports and the
  ``conductor_groups`` (1.99, ungated as in Ironic) and ``shard`` (1.106; 406 below) filters
  of port groups.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select

from services.api import collection
from services.api.versions import Version
from services.common import validation
from services.common.exceptions import Invalid, NotAcceptable
from services.common.models import Node, Port, Portgroup

Row = TypeVar("Row", Port, Portgroup)

# field -> (FIELD_LIMITS entry, version)
PORT_TEXTS: dict[str, tuple[str, Version]] = {
    "description": ("port_description", (1, 97)), "vendor": ("vendor", (1, 100)),
    "category": ("category", (1, 101))}
PORTGROUP_TEXTS: dict[str, tuple[str, Version]] = {
    "physical_network": ("physical_network", (1, 102)), "category": ("category", (1, 103))}
# Flags: field -> (default, version); the port's is refused below its version (406).
PORT_FLAGS: dict[str, tuple[bool, Version]] = {"available_for_dynamic_portgroup": (True, (1, 111))}
PORTGROUP_FLAGS: dict[str, tuple[bool, Version]] = {"dynamic_portgroup": (False, (1, 111))}
NODE_IDENT_VERSION: Version = (1, 94)
PORTGROUP_SHARD_VERSION: Version = (1, 106)


def refuse_newer_port_fields(fields: Any, version: Version) -> None:
    """Ironic's 406 for a port field newer than the request (in a body or a patch)."""
    newer = {field: since for field, (_limit, since) in PORT_TEXTS.items()} | {
        field: since for field, (_default, since) in PORT_FLAGS.items()}
    for field, since in newer.items():
        if field in fields and version < since:
            raise NotAcceptable("Request not acceptable.")


def checked_texts(values: dict[str, Any], texts: dict[str, tuple[str, Version]],
                  flags: dict[str, tuple[bool, Version]]) -> dict[str, Any]:
    clean = dict(values)
    for field, (limit, _since) in texts.items():
        if clean.get(field) is not None:
            clean[field] = validation.text(field, clean[field], limit_of=limit)
    for field, (default, _since) in flags.items():
        if field in clean:
            clean[field] = default if clean[field] is None else validation.boolean(
                field, clean[field])
    return clean


def node_of_new_port(body: dict[str, Any], version: Version) -> str:
    """The node a new port names: ``node_uuid``, or ``node_ident`` from 1.94; pops both."""
    if "node_ident" in body:
        if version < NODE_IDENT_VERSION:
            raise NotAcceptable("Request not acceptable.")
        if "node_uuid" in body:
            raise Invalid("Schema error for port: give either node_ident or node_uuid, not "
                          "both.")
        return validation.node_ident("node_ident", body.pop("node_ident"))
    if not body.get("node_uuid"):
        raise Invalid("Mandatory field missing: node_uuid.")
    return validation.node_ident("node_uuid", body.pop("node_uuid"))


def _in_conductor_groups(statement: Select[tuple[Row]], column: Any, raw: str
                         ) -> Select[tuple[Row]]:
    groups = [group.strip().lower() for group in raw.split(",")]
    return statement.where(column.in_(select(Node.id).where(Node.conductor_group.in_(groups))))


def port_filters(statement: Select[tuple[Port]], params: Any) -> Select[tuple[Port]]:
    if (contains := params.get("description_contains")) is not None:
        statement = statement.where(Port.description.contains(contains))
    if (groups := params.get("conductor_groups")) is not None:
        if any(params.get(name) for name in ("node", "node_uuid", "portgroup", "address")):
            raise Invalid("Filtering by conductor_groups cannot be combined with node_ident, "
                          "portgroup_ident, or node address filters.")
        statement = _in_conductor_groups(statement, Port.node_id, groups)
    return statement


def portgroup_filters(statement: Select[tuple[Portgroup]], params: Any, version: Version,
                      node_ident: str | None) -> Select[tuple[Portgroup]]:
    shard, groups = params.get("shard"), params.get("conductor_groups")
    collection.require_filter_version(version, PORTGROUP_SHARD_VERSION, shard)
    if sum(1 for given in (node_ident, params.get("address"), shard, groups) if given) > 1:
        raise Invalid("Filtering by node, address, or shard simultaneously is not supported.")
    if shard is not None:
        statement = statement.where(Portgroup.node_id.in_(select(Node.id).where(
            Node.shard.in_([s for s in shard.split(",") if s]))))
    if groups is not None:
        statement = _in_conductor_groups(statement, Portgroup.node_id, groups)
    return statement
