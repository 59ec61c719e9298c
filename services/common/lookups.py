"""Small lookups by UUID (or name) that the conductor, the RPC client and the classroom need."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.orm import InstrumentedAttribute

from services.common.db import Database
from services.common.exceptions import NodeNotFound, NotFound
from services.common.models import Node, Port, Portgroup, VolumeConnector, VolumeTarget
from services.common.validation import is_uuid


def by_uuid_or_name(model: Any, ident: str) -> ColumnElement[bool]:
    """The condition matching ``ident`` as ``model``'s UUID (any case) or, if not one, name."""
    if is_uuid(ident):
        return model.uuid == ident.lower()
    return model.name == ident


def node_value(db: Database, node_uuid: str, column: InstrumentedAttribute[Any]) -> Any:
    """One column of the node ``node_uuid``; NodeNotFound if there is no such node."""
    with db.session() as session:
        value = session.scalar(_column_by_uuid(column), {"node_uuid": node_uuid})
    if value is None:
        raise NodeNotFound(node_uuid)
    return value


@cache
def _column_by_uuid(column: InstrumentedAttribute[Any]) -> Select[Any]:
    # Built once per column: a statement object keeps its SQL cache key (runs for every action).
    return select(column).where(Node.uuid == bindparam("node_uuid"))


def node_uuid_of_port(db: Database, port_uuid: str) -> str:
    return _node_uuid_of(db, Port, port_uuid, "Port")


def node_uuid_of_portgroup(db: Database, portgroup_uuid: str) -> str:
    return _node_uuid_of(db, Portgroup, portgroup_uuid, "Portgroup")


def node_uuid_of_volume(db: Database, model: type[VolumeConnector] | type[VolumeTarget],
                        volume_uuid: str, title: str) -> str:
    return _node_uuid_of(db, model, volume_uuid, title)


def _node_uuid_of(db: Database,
                  model: type[Port] | type[Portgroup] | type[VolumeConnector] | type[VolumeTarget],
                  uuid: str, kind: str) -> str:
    """The UUID of the node of the port, port group or volume ``uuid``; NotFound in Ironic's
    words."""
    with db.session() as session:
        node_uuid = session.scalar(select(Node.uuid).join(model, model.node_id == Node.id)
                                   .where(model.uuid == uuid))
    if node_uuid is None:
        raise NotFound(f"{kind} {uuid} could not be found.")
    return str(node_uuid)
