"""Node locks: the ``reservation`` column, taken by one conditional UPDATE, with a lease.

A lock whose lease has expired counts as free, so the lock of a conductor that died frees itself
once its lease runs out; a live holder renews the leases of the locks it holds.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, or_, select, update

from services.common.db import Database
from services.common.exceptions import NodeLocked
from services.common.models import Node, utcnow


def acquire(db: Database, node_id: int, node_uuid: str, holder: str, lease_s: float) -> None:
    """Take the lock of a node or raise NodeLocked naming the holder."""
    now = utcnow()
    with db.session() as session:
        taken = session.execute(
            update(Node)
            .where(
                Node.id == node_id,
                or_(Node.reservation.is_(None), Node.reservation_expires_at < now),
            )
            .values(reservation=holder, reservation_expires_at=now + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken == 1:
            return
        current = session.scalar(select(Node.reservation).where(Node.id == node_id))
    raise NodeLocked(node_uuid, current or "unknown")


def release(db: Database, node_id: int, holder: str) -> None:
    with db.session() as session:
        session.execute(
            update(Node)
            .where(Node.id == node_id, Node.reservation == holder)
            .values(reservation=None, reservation_expires_at=None)
            .execution_options(synchronize_session=False)
        )


def renew(db: Database, node_ids: list[int], holder: str, lease_s: float) -> None:
    if not node_ids:
        return
    with db.session() as session:
        session.execute(
            update(Node)
            .where(Node.id.in_(node_ids), Node.reservation == holder)
            .values(reservation_expires_at=utcnow() + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )


def release_all(db: Database, holder: str) -> int:
    with db.session() as session:
        return session.execute(
            update(Node)
            .where(Node.reservation == holder)
            .values(reservation=None, reservation_expires_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount


def is_free() -> ColumnElement[bool]:
    """SQL condition: nobody holds the node's lock (never taken, released or expired)."""
    return or_(Node.reservation.is_(None), Node.reservation_expires_at < utcnow())
