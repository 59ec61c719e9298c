"""Node locks on a real (SQLite) database: contention, leases, worker limits."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pymysql.err
import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.exceptions import NodeLocked, NoFreeConductorWorker
from services.common.models import Node, NodeHistory, utcnow
from services.conductor import locks
from services.conductor.manager import ConductorManager
from services.conductor.runner import TaskRunner
from services.conductor.task import Task
from services.drivers.registry import Drivers


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'locks.sqlite'}"
    upgrade_schema(url)
    return Database(url)


def make_node(db: Database, state: str = "available") -> Node:
    with db.session() as session:
        node = Node(driver="fake-hardware", provision_state=state)
        session.add(node)
    return node


def test_contention_names_the_holder(db: Database) -> None:
    node = make_node(db)
    locks.acquire(db, node.id, node.uuid, "conductor-a", lease_s=60)
    with pytest.raises(NodeLocked, match="locked by host conductor-a"):
        locks.acquire(db, node.id, node.uuid, "conductor-b", lease_s=60)
    locks.release(db, node.id, "conductor-a")
    locks.acquire(db, node.id, node.uuid, "conductor-b", lease_s=60)


def test_lock_of_a_dead_holder_frees_itself_when_its_lease_expires(db: Database) -> None:
    node = make_node(db)
    locks.acquire(db, node.id, node.uuid, "dead-conductor", lease_s=0.3)
    with pytest.raises(NodeLocked):
        locks.acquire(db, node.id, node.uuid, "survivor", lease_s=60)
    time.sleep(0.4)
    locks.acquire(db, node.id, node.uuid, "survivor", lease_s=60)
    with db.session() as session:
        assert session.get(Node, node.id).reservation == "survivor"  # type: ignore[union-attr]


def test_renewal_keeps_a_live_holder_locked(db: Database) -> None:
    node = make_node(db)
    locks.acquire(db, node.id, node.uuid, "alive", lease_s=0.3)
    for _ in range(3):
        time.sleep(0.15)
        locks.renew(db, [node.id], "alive", lease_s=0.3)
    with pytest.raises(NodeLocked):
        locks.acquire(db, node.id, node.uuid, "other", lease_s=60)


def test_release_by_a_non_holder_does_nothing(db: Database) -> None:
    node = make_node(db)
    locks.acquire(db, node.id, node.uuid, "holder", lease_s=60)
    locks.release(db, node.id, "someone-else")
    with pytest.raises(NodeLocked):
        locks.acquire(db, node.id, node.uuid, "someone-else", lease_s=60)


def test_no_free_worker_answers_503_and_changes_nothing(db: Database) -> None:
    settings = Settings(
        conductor={"workers": 1, "hostname": "test-conductor"},
        fake={"deploy_delay_s": (0.5, 0.5)},
    )
    manager = ConductorManager(db, settings, Drivers(settings))
    manager.start()
    try:
        busy, idle = make_node(db), make_node(db)
        manager.do_provisioning_action(busy.uuid, "active")
        with pytest.raises(NoFreeConductorWorker) as refused:
            manager.do_provisioning_action(idle.uuid, "active")
        assert refused.value.code == 503
        with db.session() as session:
            untouched = session.get(Node, idle.id)
            assert untouched is not None
            assert (untouched.provision_state, untouched.reservation) == ("available", None)
        with pytest.raises(NodeLocked) as locked:
            manager.set_boot_device(busy.uuid, "pxe", persistent=False)
        assert locked.value.code == 409
    finally:
        manager.stop()
    with db.session() as session:
        finished = session.get(Node, busy.id)
        assert finished is not None
        assert (finished.provision_state, finished.reservation) == ("active", None)


def test_concurrent_lockers_get_exactly_one_winner(db: Database) -> None:
    node = make_node(db)
    winners: list[str] = []

    def attempt(name: str) -> None:
        try:
            locks.acquire(db, node.id, node.uuid, name, lease_s=60)
            winners.append(name)
        except NodeLocked:
            pass

    threads = [threading.Thread(target=attempt, args=(f"c{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def take_over(db: Database, node_id: int, holder: str) -> None:
    """What another conductor does once the lease of a stalled holder expired."""
    with db.session() as session:
        session.execute(update(Node).where(Node.id == node_id).values(
            reservation=holder, reservation_expires_at=utcnow() + timedelta(seconds=60)))


def test_a_holder_that_lost_its_lock_saves_nothing(db: Database) -> None:
    node = make_node(db)
    locks.acquire(db, node.id, node.uuid, "stalled", lease_s=60)
    with pytest.raises(locks.LockLost, match="nothing was saved"), db.session() as session:
        locks.fence(session, node.id, "stalled", lease_s=60)
        mine = session.get(Node, node.id)
        assert mine is not None
        mine.last_error = "written by the holder"
        session.commit()  # still held: saved, and the lease renewed
        take_over(db, node.id, "successor")
        mine.last_error = "written after the lock was lost"
    with db.session() as session:
        after = session.get(Node, node.id)
        assert after is not None
        assert (after.last_error, after.reservation) == ("written by the holder", "successor")


def test_a_worker_that_lost_its_lock_records_no_outcome(db: Database) -> None:
    settings = Settings(
        conductor={"workers": 1, "hostname": "stalled-conductor"},
        fake={"deploy_delay_s": (1.0, 1.0)},
    )
    manager = ConductorManager(db, settings, Drivers(settings))
    manager.start()
    try:
        node = make_node(db)
        manager.do_provisioning_action(node.uuid, "active")
        take_over(db, node.id, "successor")
        time.sleep(1.5)  # the fake deploy ends and tries to save "active"
    finally:
        manager.stop()
    with db.session() as session:
        after = session.get(Node, node.id)
        assert after is not None
        assert (after.provision_state, after.reservation) == ("deploying", "successor")


def test_work_that_deletes_its_node_commits(db: Database) -> None:
    node = make_node(db)
    locks.acquire(db, node.id, node.uuid, "deleter", lease_s=60)
    with db.session() as session:
        locks.fence(session, node.id, "deleter", lease_s=60)
        doomed = session.get(Node, node.id)
        session.delete(doomed)
    with db.session() as session:
        assert session.get(Node, node.id) is None


def test_a_fenced_transaction_checks_the_lock_before_its_first_write(db: Database) -> None:
    """Before any row that refers to the node is written (InnoDB's foreign key check would
    take a shared lock on the node's row first), not only at commit."""
    node = make_node(db)
    locks.acquire(db, node.id, node.uuid, "stalled", lease_s=60)
    take_over(db, node.id, "successor")
    with db.session() as session:
        locks.fence(session, node.id, "stalled", lease_s=60)
        session.add(NodeHistory(node_id=node.id, conductor="stalled", event_type="deploying",
                                severity="INFO", event="written after the lock was lost"))
        with pytest.raises(locks.LockLost):
            session.flush()
        session.rollback()
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(NodeHistory)) == 0


def test_an_outcome_the_database_gave_up_saving_fails_the_node(db: Database) -> None:
    settings = Settings(conductor={"workers": 1, "hostname": "c1"})
    runner = TaskRunner(db, settings, Drivers(settings), "c1")
    node = make_node(db, state="deploying")

    def deadlocks_at_commit(_session: Session) -> None:
        raise OperationalError("UPDATE nodes", {}, pymysql.err.OperationalError(
            1213, "Deadlock found when trying to get lock; try restarting transaction"))

    def deploy(task: Task) -> None:
        task.process_event("done")
        event.listen(task.session, "before_commit", deadlocks_at_commit, once=True)

    assert runner.start_on_locked(node.id, node.uuid, deploy, "deploying")
    runner.shutdown()
    with db.session() as session:
        after = session.get(Node, node.id)
        assert after is not None
        assert (after.provision_state, after.reservation) == ("deploy failed", None)
        assert "the database gave up saving its outcome" in (after.last_error or "")
