"""What endpoints get from the application: version, database, conductor, settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from services.api.versions import Version
from services.common.db import Database
from services.common.enabled_hardware import EnabledHardware
from services.common.exceptions import Invalid, NodeNotFound, NotFound
from services.common.membership import Membership
from services.common.models import Node, Portgroup
from services.common.validation import invalid_ident, is_uuid, is_valid_name

if TYPE_CHECKING:
    from services.conductor.interface import ConductorAPI


def api_version(request: Request) -> Version:
    version: Version = request.scope["state"]["api_version"]
    return version


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def conductor(request: Request) -> ConductorAPI:
    api: ConductorAPI = request.app.state.conductor_api
    return api


def members(request: Request) -> Membership:
    membership: Membership = request.app.state.membership
    return membership


def enabled_drivers(request: Request) -> EnabledHardware:
    """The hardware types and interfaces the live conductors registered."""
    membership: Membership = request.app.state.membership
    return membership.hardware()


# Built once: a statement object keeps its SQL cache key (every node request runs one).
_NODE_BY_UUID = select(Node).where(Node.uuid == bindparam("ident"))
_NODE_BY_NAME = select(Node).where(Node.name == bindparam("ident"))


def find_node(session: Session, ident: str, version: Version) -> Node:
    """A node by UUID, or by name from API 1.5 on; NodeNotFound otherwise."""
    if is_uuid(ident):
        node = session.scalar(_NODE_BY_UUID, {"ident": ident.lower()})
    elif version >= (1, 5):
        if not is_valid_name(ident):
            raise invalid_ident(ident)
        node = session.scalar(_NODE_BY_NAME, {"ident": ident})
    else:
        node = None
    if node is None:
        raise NodeNotFound(ident)
    return node


PORTGROUPS_VERSION: Version = (1, 23)
SUBCOLLECTIONS_VERSION: Version = (1, 24)  # a node's port groups, a port group's ports


def require_version(version: Version, since: Version = PORTGROUPS_VERSION) -> None:
    """Paths that do not exist before ``since`` are 404 there, as in Ironic."""
    if version < since:
        raise NotFound("The resource could not be found.")


def find_node_uuid(db: Database, ident: str, version: Version, since: Version) -> str:
    """The UUID of the node of a path below /v1/nodes/{ident} that exists from ``since`` on
    (404 below it, as ``require_version``)."""
    require_version(version, since)
    with db.session() as session:
        return find_node(session, ident, version).uuid


def require_collection_version(version: Version, since: Version, method: str,
                               message: str) -> None:
    """A top-level collection newer than the request's version (deploy templates, runbooks,
    inspection rules): Ironic's 404 for a GET, 405 for any other method."""
    if version < since:
        if method == "GET":
            raise NotFound(message)
        raise Invalid(message, code=405)


def find_portgroup(session: Session, ident: str) -> Portgroup:
    """A port group by UUID or name; Ironic's 400 for an ident that is neither, else 404."""
    if is_uuid(ident):
        where = Portgroup.uuid == ident.lower()
    elif is_valid_name(ident):
        where = Portgroup.name == ident
    else:
        raise invalid_ident(ident)
    group = session.scalar(select(Portgroup).options(joinedload(Portgroup.node)).where(where))
    if group is None:
        raise NotFound(f"Portgroup {ident} could not be found.")
    return group
