"""Allocations decided by a conductor, as Ironic's (ironic/conductor/allocations.py).

The API writes an allocation in ``allocating`` and hands it to a conductor, which picks a node
in a worker: available, not in maintenance, not associated, not retired, of the
allocation's resource class, owner and candidate nodes, holding its traits (one named as the
allocation first). Taking a node is one transaction of two conditional UPDATEs: the allocation
while still ``allocating`` (so that two conductors processing it take one node at most) and the
node while still free (Ironic also wants a known power state: Enclume's verify does not
read it, the power sync does later). No node: ``error`` with Ironic's ``last_error``. A
backfill (``node`` given) is checked and written under the node's lock at once. Deleting an
allocation frees its node, except an active node (or one in a transition) out of
maintenance; removing a node's instance_uuid or deleting the node deletes its allocation.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from services.common import states
from services.common.exceptions import Conflict, Invalid, NotFound
from services.common.models import Allocation, Node, utcnow

if TYPE_CHECKING:
    from services.common.db import Database
    from services.conductor.runner import TaskRunner

LOG = logging.getLogger(__name__)
ALLOCATING, ACTIVE, ERROR = "allocating", "active", "error"
# Where a node's allocation may be removed during a transition (Ironic's UPDATE_ALLOWED_STATES).
UPDATE_ALLOWED_STATES = frozenset(s.value for s in (
    states.S.DEPLOYFAIL, states.S.INSPECTING, states.S.INSPECTFAIL, states.S.INSPECTWAIT,
    states.S.CLEANFAIL, states.S.ERROR, states.S.VERIFYING, states.S.ADOPTFAIL,
    states.S.RESCUEFAIL, states.S.UNRESCUEFAIL, states.S.SERVICEHOLD, states.S.SERVICEFAIL))


class AllocationFailed(Invalid):
    def __init__(self, allocation_uuid: str, error: str) -> None:
        super().__init__(f"Failed to process allocation {allocation_uuid}: {error}.")


def _candidates(session: Session, allocation: Allocation) -> list[Node]:
    """The matching nodes, in the order to try them; AllocationFailed (Ironic's texts)."""
    statement = select(Node).where(
        Node.resource_class == allocation.resource_class,
        Node.provision_state == states.S.AVAILABLE.value,
        Node.instance_uuid.is_(None), Node.allocation_id.is_(None),
        Node.maintenance.is_(False), Node.retired.is_(False))
    if allocation.candidate_nodes:
        statement = statement.where(Node.uuid.in_(allocation.candidate_nodes))
    if allocation.owner:  # the nodes its project owns or leases, as Ironic's 'project' filter
        statement = statement.where(or_(Node.owner == allocation.owner,
                                        Node.lessee == allocation.owner))
    nodes = list(session.scalars(statement))
    if not nodes:
        which = ("none of the requested nodes are available and match" if
                 allocation.candidate_nodes else "no available nodes match")
        raise AllocationFailed(allocation.uuid,
                               f"{which} the resource class {allocation.resource_class}")
    wanted = set(allocation.traits or [])
    nodes = [node for node in nodes if wanted <= set(node.traits or [])]
    if not nodes:
        raise AllocationFailed(allocation.uuid, "no suitable nodes have the requested traits "
                               + ", ".join(allocation.traits))
    random.shuffle(nodes)
    nodes.sort(key=lambda node: allocation.name is None or node.name != allocation.name)
    return nodes


def _take(session: Session, allocation: Allocation, node: Node) -> bool | None:
    """Give ``node`` to the allocation: True; False if the node was taken meanwhile; None if
    the allocation is no longer ``allocating`` (deleted, or decided by another conductor)."""
    claimed = session.execute(
        update(Allocation).where(Allocation.id == allocation.id, Allocation.state == ALLOCATING)
        .values(state=ACTIVE, node_id=node.id, updated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        session.rollback()
        return None
    taken = session.execute(
        update(Node).where(Node.id == node.id, Node.instance_uuid.is_(None),
                           Node.allocation_id.is_(None), Node.maintenance.is_(False),
                           Node.provision_state == states.S.AVAILABLE.value)
        .values(instance_uuid=allocation.uuid, allocation_id=allocation.id,
                updated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if taken != 1:
        session.rollback()
        return False
    session.commit()
    return True


def allocate(db: Database, allocation_uuid: str) -> None:
    """Decide the allocation ``allocation_uuid`` (in a worker: raises nothing)."""
    error = None
    try:
        with db.session() as session:
            allocation = session.scalar(select(Allocation).where(
                Allocation.uuid == allocation_uuid, Allocation.state == ALLOCATING))
            if allocation is None:
                return
            nodes = _candidates(session, allocation)
            for node in nodes:
                outcome = _take(session, allocation, node)
                if outcome is not False:
                    return
            error = AllocationFailed(allocation_uuid,
                                     "all nodes were filtered out during reservation").message
    except AllocationFailed as exc:
        error = exc.message
    except Exception as exc:
        LOG.exception("allocation %s failed", allocation_uuid)
        error = f"Unexpected exception during allocation: {exc}"
    _fail(db, allocation_uuid, error)


def orphaned(db: Database, before: datetime) -> list[str]:
    """The allocations still ``allocating`` that were created (or last written) before
    ``before``: their conductor died, or none could be reached; deciding one twice is safe."""
    with db.session() as session:
        return list(session.scalars(select(Allocation.uuid).where(
            Allocation.state == ALLOCATING, Allocation.created_at < before,
            or_(Allocation.updated_at.is_(None), Allocation.updated_at < before))))


def _fail(db: Database, allocation_uuid: str, error: str) -> None:
    LOG.info("allocation %s: %s", allocation_uuid, error)
    with db.session() as session:
        session.execute(update(Allocation).where(
            Allocation.uuid == allocation_uuid, Allocation.state == ALLOCATING)
            .values(state=ERROR, last_error=error, node_id=None, updated_at=utcnow()))


def _backfill_errors(node: Node, allocation: Allocation) -> list[str]:
    errors = []
    if node.provision_state != states.S.ACTIVE.value:
        errors.append('Node must be in the "active" state, but the current state is '
                      f'"{node.provision_state}"')
    if allocation.resource_class and node.resource_class != allocation.resource_class:
        errors.append(f"Resource class {node.resource_class} does not match the requested "
                      f"resource class {allocation.resource_class}")
    if allocation.traits and not set(allocation.traits) <= set(node.traits or []):
        errors.append(f"List of traits {node.traits} does not match the requested traits "
                      f"{allocation.traits}")
    if allocation.candidate_nodes and node.uuid not in allocation.candidate_nodes:
        errors.append("Candidate nodes must be empty or contain the target node, but got "
                      f"{allocation.candidate_nodes}")
    return errors


def _verify_deallocation(node: Node, allocation: Allocation) -> None:
    """Conflict if the node's allocation may not be removed now (Ironic's texts)."""
    if node.maintenance:
        return
    if node.target_provision_state and node.provision_state not in UPDATE_ALLOWED_STATES:
        raise Conflict(f"Cannot remove allocation {allocation.uuid} for node {node.uuid}, "
                       f"because the node is in state {node.provision_state} where updates "
                       "are not allowed (and maintenance mode is off)")
    if node.provision_state == states.S.ACTIVE.value:
        raise Conflict(f"Cannot remove allocation {allocation.uuid} for node {node.uuid}, "
                       "because the node is active (and maintenance mode is off)")


# Where a node's instance_uuid may be removed, and its allocation with it (Ironic's
# update_node), unless the node is in maintenance.
INSTANCE_REMOVAL_STATES = (states.S.ENROLL.value, states.S.INSPECTING.value,
                           states.S.INSPECTWAIT.value, states.S.MANAGEABLE.value,
                           states.S.AVAILABLE.value)


def remove_with_instance(session: Session, node: Node, values: dict[str, object]) -> None:
    """Delete the node's allocation if ``values`` removes its instance_uuid (Ironic's rule
    and text: only in INSTANCE_REMOVAL_STATES or in maintenance, else 409)."""
    if "instance_uuid" not in values or values["instance_uuid"] or node.allocation_id is None:
        return
    if not node.maintenance and node.provision_state not in INSTANCE_REMOVAL_STATES:
        raise Conflict(f"Node {node.uuid} with an allocation can not have instance_uuid "
                       "removed unless it is in one of allowed "
                       f"({', '.join(INSTANCE_REMOVAL_STATES)}) states or in maintenance "
                       f"mode. Current state is '{node.provision_state}'.")
    session.execute(Allocation.__table__.delete().where(Allocation.id == node.allocation_id))
    node.allocation_id = None


class AllocationOperations:
    """Mixed into ConductorManager: its ``db`` and ``runner``."""

    db: Database
    runner: TaskRunner

    def process_allocation(self, allocation_uuid: str) -> None:
        """Decide the allocation in a worker (here, if none is free: it is a few queries)."""
        if not self.runner.submit(lambda: allocate(self.db, allocation_uuid)):
            allocate(self.db, allocation_uuid)

    def backfill_allocation(self, allocation_uuid: str, node_uuid: str) -> None:
        """Give the allocation the node it names, under the node's lock; on a mismatch the
        allocation fails (400, Ironic's text)."""
        with self.runner.locked(node_uuid) as task:
            node = task.node
            allocation = task.session.scalar(
                select(Allocation).where(Allocation.uuid == allocation_uuid))
            if allocation is None:
                raise NotFound(f"Allocation {allocation_uuid} could not be found.")
            if node.allocation_id is not None or (
                    node.instance_uuid and node.instance_uuid != allocation.uuid):
                error: Exception = Conflict(f"Node {node.uuid} is associated with instance "
                                            f"{node.instance_uuid}.")
            elif errors := _backfill_errors(node, allocation):
                error = AllocationFailed(allocation.uuid, f"Cannot backfill an allocation for "
                                         f"node {node.uuid}: {'; '.join(errors)}")
            else:
                node.instance_uuid, node.allocation_id = allocation.uuid, allocation.id
                allocation.node_id, allocation.state = node.id, ACTIVE
                return
        _fail(self.db, allocation_uuid, str(error))
        raise error

    def destroy_allocation(self, allocation_uuid: str) -> None:
        """Delete the allocation and free its node (under its lock) if it may be freed."""
        with self.db.session() as session:
            node_uuid = session.scalar(select(Node.uuid).join(
                Allocation, Allocation.node_id == Node.id).where(
                Allocation.uuid == allocation_uuid))
            if node_uuid is None:  # none yet: unless a worker gave it one meanwhile
                deleted = session.execute(Allocation.__table__.delete().where(
                    Allocation.uuid == allocation_uuid, Allocation.node_id.is_(None)))
                if deleted.rowcount == 1:
                    return
                node_uuid = session.scalar(select(Node.uuid).join(
                    Allocation, Allocation.node_id == Node.id).where(
                    Allocation.uuid == allocation_uuid))
                if node_uuid is None:
                    return
        with self.runner.locked(node_uuid) as task:
            allocation = task.session.scalar(
                select(Allocation).where(Allocation.uuid == allocation_uuid))
            if allocation is None:
                return
            _verify_deallocation(task.node, allocation)
            if task.node.allocation_id == allocation.id:
                task.node.allocation_id = None
                task.node.instance_uuid = None
            task.session.delete(allocation)
