"""The object a /v1 path names, as the policy gate needs it (services/api/policy_gate.py).

Its policy target (a node's owner and lessee; a port's, port group's or volume's node's; an
allocation's or a runbook's owner) and the 404 that conceals it from a caller who may not see
it (the very error the endpoint gives for one that does not exist; runbooks are not concealed).
None when there is no such object: the endpoint then answers its own 404 (or 400 for a
malformed ident).
"""

from __future__ import annotations

from dataclasses import dataclass

from anyio import to_thread
from fastapi import Request
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from services.api import policy
from services.api.deps import find_node
from services.api.policy_routes import (
    ALLOCATION,
    CONNECTOR,
    NODE,
    PORT,
    PORTGROUP,
    RUNBOOK,
    VOLUME_TARGET,
)
from services.common.db import Database
from services.common.exceptions import EnclumeError, NodeNotFound, NotFound
from services.common.models import Allocation, Node, Port, Portgroup
from services.common.rule_models import Runbook
from services.common.validation import is_uuid, is_valid_name
from services.common.volumes import CONNECTORS, TARGETS


@dataclass(frozen=True)
class Found:
    target: policy.Target
    missing: NotFound  # what the caller who may not see it is told
    uuid: str | None = None  # a node's
    provision_state: str | None = None  # a node's
    public: bool = False  # a runbook's


def owned_or_leased(project: str) -> Select[tuple[int]]:
    """The ids of the nodes ``project`` owns or leases: a project's share of a list."""
    return select(Node.id).where(or_(Node.owner == project, Node.lessee == project))


async def lookup(request: Request, kind: str, ident: str) -> Found | None:
    db: Database = request.app.state.db
    version = request.scope["state"]["api_version"]

    def run() -> Found | None:
        with db.session() as session:
            try:
                return _find(session, kind, ident, version)
            except EnclumeError:
                return None
    return await to_thread.run_sync(run)


async def lookup_body_node(request: Request, ident: object) -> Found | None:
    """The node a create names in its body (``node_uuid``); None when there is none."""
    if not isinstance(ident, str):
        return None
    return await lookup(request, NODE, ident)


def _find(session: Session, kind: str, ident: str, version: tuple[int, int]) -> Found | None:
    if kind == NODE:
        node = find_node(session, ident, version)
        return Found(policy.Target(policy.NODE, node.owner, node.lessee), NodeNotFound(ident),
                     node.uuid, node.provision_state)
    if kind == ALLOCATION:
        by = Allocation.uuid == ident.lower() if is_uuid(ident) else Allocation.name == ident
        owner = session.execute(select(Allocation.owner).where(by)).first()
        if owner is None:
            return None
        return Found(policy.Target(policy.ALLOCATION, owner[0]),
                     NotFound(f"Allocation {ident} could not be found."))
    if kind == RUNBOOK:
        by = Runbook.uuid == ident.lower() if is_uuid(ident) else Runbook.name == ident
        runbook = session.execute(select(Runbook.owner, Runbook.public).where(by)).first()
        if runbook is None:
            return None
        return Found(policy.Target(policy.RUNBOOK, runbook.owner),
                     NotFound(f"Runbook {ident} could not be found."), public=runbook.public)
    model, missing = _NODE_CHILDREN[kind]
    if kind == PORTGROUP and not is_uuid(ident):
        if not is_valid_name(ident):
            return None
        by = Portgroup.name == ident
    elif not is_uuid(ident):
        return None
    else:
        by = model.uuid == ident.lower()
    row = session.execute(select(Node.owner, Node.lessee).join(model, model.node_id == Node.id)
                          .where(by)).first()
    if row is None:
        return None
    return Found(policy.Target(policy.NODE, row.owner, row.lessee),
                 NotFound(missing.format(ident)))


# A node's children: their model and the endpoint's 404 text.
_NODE_CHILDREN: dict[str, tuple[type, str]] = {
    PORT: (Port, "Port {} could not be found."),
    PORTGROUP: (Portgroup, "Portgroup {} could not be found."),
    CONNECTOR: (CONNECTORS.model, f"{CONNECTORS.title} {{}} could not be found."),
    VOLUME_TARGET: (TARGETS.model, f"{TARGETS.title} {{}} could not be found."),
}
