"""What endpoints get from the application: version, database, conductor, settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api.versions import Version
from services.common.db import Database
from services.common.exceptions import Conflict, NodeNotFound
from services.common.models import Node

if TYPE_CHECKING:
    from services.conductor.manager import ConductorManager


def api_version(request: Request) -> Version:
    version: Version = request.scope["state"]["api_version"]
    return version


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def conductor(request: Request) -> ConductorManager:
    manager: ConductorManager = request.app.state.conductor
    return manager


def is_uuid_like(value: str) -> bool:
    import uuid

    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def find_node(session: Session, ident: str, version: Version) -> Node:
    """A node by UUID, or by name from API 1.5 on; NodeNotFound otherwise."""
    if is_uuid_like(ident):
        node = session.scalar(select(Node).where(Node.uuid == ident.lower()))
    elif version >= (1, 5):
        node = session.scalar(select(Node).where(Node.name == ident))
    else:
        node = None
    if node is None:
        raise NodeNotFound(ident)
    return node


def conflict_from(exc: IntegrityError, values: dict[str, object]) -> Conflict:
    """Turn a unique-constraint violation into Ironic's 409 message for that field."""
    text = str(exc.orig).lower()
    if "address" in text:
        return Conflict(f"A port with MAC address {values.get('address')} already exists.")
    if "instance_uuid" in text:
        return Conflict(f"Instance {values.get('instance_uuid')} is already associated with a "
                        "node.")
    if "name" in text:
        return Conflict(f"A resource with name {values.get('name')} already exists.")
    if "uuid" in text:
        return Conflict(f"A resource with UUID {values.get('uuid')} already exists.")
    return Conflict("The request conflicts with an existing resource.")
