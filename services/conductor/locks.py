"""Node locks: the ``reservation`` column, taken by one conditional UPDATE, with a lease.

A lock whose lease has expired counts as free, so the lock of a conductor that died frees itself
once its lease runs out; a live holder renews the leases of the locks it holds. A holder that
was stalled past its lease (and whose lock another conductor took) must not write what it was
doing: every commit of work done under a lock is fenced (`fence`) and fails with `LockLost`.
Each statement here is its own short transaction, run again on a deadlock or a lock wait
(`retrying_transient`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, event, or_, select, update
from sqlalchemy.orm import Session

from services.common.db import Database
from services.common.exceptions import Conflict, NodeLocked
from services.common.metrics import NODE_LOCKS
from services.common.models import Node, utcnow
from services.common.transient import retrying_transient


class LockLost(Conflict):
    def __init__(self, node_id: int, holder: str) -> None:
        super().__init__(f"Conductor {holder} lost the lock of node {node_id} (its lease expired "
                         f"and another conductor took it) before it could save its work; "
                         f"nothing was saved.")


# Built once: a statement object keeps its SQL cache key, so executing it again costs neither
# building it nor keying it (these run several times for every action on a node).
# On MariaDB every lock statement reaches the rows through the primary key (BY_PRIMARY_KEY):
# InnoDB locks index records in the order it reads them, and a renewal read through the
# reservation index (holder, then row) deadlocked with a single-row renewal (row, then holder).
BY_PRIMARY_KEY: dict[str, Any] = {"text": "FORCE INDEX (PRIMARY)", "dialect_name": "mysql"}
_TAKE = (
    update(Node)
    .where(
        Node.id == bindparam("node_id"),
        or_(Node.reservation.is_(None), Node.reservation_expires_at < bindparam("now")),
    )
    .values(reservation=bindparam("holder"), reservation_expires_at=bindparam("expires"))
    .with_hint(**BY_PRIMARY_KEY)
    .execution_options(synchronize_session=False)
)
_RELEASE = (
    update(Node)
    .where(Node.id == bindparam("node_id"), Node.reservation == bindparam("holder"))
    .values(reservation=None, reservation_expires_at=None)
    .with_hint(**BY_PRIMARY_KEY)
    .execution_options(synchronize_session=False)
)
_RENEW_ONE = (
    update(Node)
    .where(Node.id == bindparam("node_id"), Node.reservation == bindparam("holder"))
    .values(reservation_expires_at=bindparam("expires"))
    .with_hint(**BY_PRIMARY_KEY)
    .execution_options(synchronize_session=False)
)
_RESERVATION = select(Node.reservation).where(Node.id == bindparam("node_id"))
_EXISTS = select(Node.id).where(Node.id == bindparam("node_id"))
_FENCE = "enclume.fence"  # session.info key: (node id, holder, lease) of a fenced session
_FLUSHED = "enclume.fence.flushed"  # session.info key: the transaction has written something
_CHECKED = "enclume.fence.checked"  # session.info key: the transaction holds the node's row


def acquire(db: Database, node_id: int, node_uuid: str, holder: str, lease_s: float) -> None:
    """Take the lock of a node or raise NodeLocked naming the holder."""

    def take() -> str | None:
        """None when taken, else who holds it."""
        now = utcnow()
        with db.session() as session:
            taken = session.execute(_TAKE, {
                "node_id": node_id, "now": now, "holder": holder,
                "expires": now + timedelta(seconds=lease_s),
            }).rowcount
            if taken == 1:
                return None
            return session.scalar(_RESERVATION, {"node_id": node_id}) or "unknown"

    current = retrying_transient(take)
    if current is None:
        NODE_LOCKS.labels("taken").inc()
        return
    NODE_LOCKS.labels("conflict").inc()
    raise NodeLocked(node_uuid, current)


def release(db: Database, node_id: int, holder: str) -> None:
    def give_back() -> None:
        with db.session() as session:
            session.execute(_RELEASE, {"node_id": node_id, "holder": holder})

    retrying_transient(give_back)


def renew(db: Database, node_ids: list[int], holder: str, lease_s: float) -> None:
    if not node_ids:
        return

    def extend() -> None:
        with db.session() as session:
            session.execute(
                update(Node)
                .where(Node.id.in_(node_ids), Node.reservation == holder)
                .values(reservation_expires_at=utcnow() + timedelta(seconds=lease_s))
                .with_hint(**BY_PRIMARY_KEY)
                .execution_options(synchronize_session=False)
            )

    retrying_transient(extend)


def release_all(db: Database, holder: str) -> int:
    def give_back_all() -> int:
        with db.session() as session:
            return int(session.execute(
                update(Node)
                .where(Node.reservation == holder)
                .values(reservation=None, reservation_expires_at=None)
                .execution_options(synchronize_session=False)
            ).rowcount)

    return retrying_transient(give_back_all)


def is_free() -> ColumnElement[bool]:
    """SQL condition: nobody holds the node's lock (never taken, released or expired)."""
    return or_(Node.reservation.is_(None), Node.reservation_expires_at < utcnow())


def fence(session: Session, node_id: int, holder: str, lease_s: float) -> None:
    """Make every commit of ``session`` first check, in the same transaction, that ``holder``
    still holds the node's lock (renewing its lease), and fail with LockLost if not."""
    session.info[_FENCE] = (node_id, holder, lease_s)


# Listened to once for every session (listening per session costs more than the check): only
# a session that `fence` marked is checked.
@event.listens_for(Session, "after_flush")
def _wrote(session: Session, _context: object) -> None:
    if _FENCE in session.info:
        session.info[_FLUSHED] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _ended(session: Session) -> None:
    session.info.pop(_FLUSHED, None)
    session.info.pop(_CHECKED, None)


@event.listens_for(Session, "before_flush")
def _checked_before_the_first_write(session: Session, _context: object, _objects: object
                                    ) -> None:
    """The node's row is locked (by the check) before any row that refers to it is written:
    on InnoDB a child row's foreign key check takes a shared lock on the node's row, and
    raising it to a write lock at commit deadlocks with a renewal waiting for the row."""
    if _FENCE in session.info and not session.info.get(_CHECKED):
        _check_held(session)


@event.listens_for(Session, "before_commit")
def _still_held(committing: Session) -> None:
    if _FENCE not in committing.info:
        return
    if not (committing.info.get(_FLUSHED) or committing.new or committing.dirty
            or committing.deleted):
        return  # a commit that writes nothing needs no lock (the check is an UPDATE)
    _check_held(committing)  # again at commit: the lease counts from the commit


def _check_held(session: Session) -> None:
    node_id, holder, lease_s = session.info[_FENCE]
    held = session.execute(_RENEW_ONE, {
        "node_id": node_id, "holder": holder,
        "expires": utcnow() + timedelta(seconds=lease_s),
    }).rowcount
    if held != 1 and session.scalar(_EXISTS, {"node_id": node_id}) is not None:
        raise LockLost(node_id, holder)  # (a node deleted by this work has no lock left)
    session.info[_CHECKED] = True
