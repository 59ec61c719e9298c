"""The task runner: the one owner of a node lock's whole life, and of the conductor's workers.

It takes a node's lock (``locks.acquire``), keeps it in the set whose leases the conductor's
keeper renews (``renew_held``), fences every commit made under it (``locks.fence``: a holder that
lost the lock saves nothing), and releases it when the work ends: in the caller's thread for
synchronous work (``locked``), or in a worker for long work (``start``, ``start_on_locked``),
which gets the lock handed over with a free worker and releases both at the end. A lock is
taken at once or refused (409, naming the holder): the API user, the periodic tasks and the
agent's next heartbeat retry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from services.common.config import Settings
from services.common.db import Database
from services.common.exceptions import Conflict, Invalid, NodeNotFound, NoFreeConductorWorker
from services.common.lookups import node_value
from services.common.models import Node
from services.common.secrets import mask
from services.common.transient import TransientDatabaseError, retrying_transient
from services.conductor import locks
from services.conductor.task import Task
from services.drivers.base import DriverError
from services.drivers.registry import Drivers

LOG = logging.getLogger(__name__)

Work = Callable[[Task], None]


# The operation's name in "<Operation> failed for node X: <error>", whichever path failed it.
FAILURE_WORDS = {"deploying": "Deploy", "cleaning": "Cleaning", "introspection": "Inspection",
                 "rescue": "Rescue"}


def failure_message(task: Task, operation: str, error: BaseException) -> str:
    """last_error of a failed operation; the error may quote an image URL: never its
    password."""
    word = FAILURE_WORDS.get(operation, operation.capitalize())
    return mask(f"{word} failed for node {task.node.uuid}: {error}")


class TaskRunner:
    def __init__(self, db: Database, settings: Settings, drivers: Drivers, host: str) -> None:
        self.db = db
        self.drivers = drivers
        self.host = host
        self._lease_s = settings.conductor.reservation_lease_s
        self._executor = ThreadPoolExecutor(settings.conductor.workers, "conductor-worker")
        self._free_workers = threading.BoundedSemaphore(settings.conductor.workers)
        self._held: set[int] = set()
        self._held_guard = threading.Lock()

    # -- the locks of this conductor -------------------------------------------------------

    def release_all(self) -> None:
        """Locks under our name are from before a restart: nothing holds them any more."""
        locks.release_all(self.db, self.host)

    def renew_held(self) -> None:
        with self._held_guard:
            held = list(self._held)
        locks.renew(self.db, held, self.host, self._lease_s)

    def shutdown(self) -> None:
        """Wait for the running work to end (each releases its lock)."""
        self._executor.shutdown(wait=True)

    def _lock(self, node_id: int, node_uuid: str) -> None:
        locks.acquire(self.db, node_id, node_uuid, self.host, self._lease_s)
        with self._held_guard:
            self._held.add(node_id)

    def _unlock(self, node_id: int) -> None:
        with self._held_guard:
            self._held.discard(node_id)
        locks.release(self.db, node_id, self.host)

    # -- tasks -----------------------------------------------------------------------------

    def node_id(self, node_uuid: str) -> int:
        node_id: int = node_value(self.db, node_uuid, Node.id)
        return node_id

    @contextmanager
    def task(self, node_id: int, locked: bool = False) -> Iterator[Task]:
        """A node and its driver in a session of its own; ``locked``: the caller holds the
        node's lock, and every commit checks it still does (`locks.fence`)."""
        with self.db.session() as session:
            if locked:
                locks.fence(session, node_id, self.host, self._lease_s)
            node = session.get(Node, node_id)
            if node is None:
                raise NodeNotFound(str(node_id))
            yield Task(session, node, self.drivers.for_node(node), self.host)

    @contextmanager
    def locked(self, node_uuid: str) -> Iterator[Task]:
        """Synchronous work on a node under its lock; committed when the block ends."""
        node_id = self.node_id(node_uuid)
        self._lock(node_id, node_uuid)
        try:
            with self.task(node_id, locked=True) as task:
                yield task
        finally:
            self._unlock(node_id)

    # -- work in a worker ------------------------------------------------------------------

    def _reserve(self, node_id: int, node_uuid: str) -> None:
        """Take a free worker and the node's lock, or neither (NoFreeConductorWorker, 409)."""
        if not self._free_workers.acquire(blocking=False):
            raise NoFreeConductorWorker()
        try:
            self._lock(node_id, node_uuid)
        except BaseException:
            self._free_workers.release()
            raise

    def start(self, node_uuid: str, prepare: Work, work: Work, event_type: str) -> None:
        """Prepare under the lock here, then finish in a worker, which releases the lock."""
        node_id = self.node_id(node_uuid)
        self._reserve(node_id, node_uuid)
        try:
            with self.task(node_id, locked=True) as task:
                prepare(task)
            self._executor.submit(self._run, node_id, work, event_type)
        except BaseException:
            self._unlock(node_id)
            self._free_workers.release()
            raise

    def start_on_locked(self, node_id: int, node_uuid: str, work: Work, event_type: str) -> bool:
        """Run ``work`` in a worker on a node if its lock and a worker are free right now.

        For periodic tasks and agent heartbeats, which skip a node that is busy rather than
        wait for it.
        """
        try:
            self._reserve(node_id, node_uuid)
        except (NoFreeConductorWorker, Conflict):
            return False
        self._executor.submit(self._run, node_id, work, event_type)
        return True

    def submit(self, work: Callable[[], None]) -> bool:
        """Run ``work``, tied to no node, in a worker if one is free right now (else False)."""
        if not self._free_workers.acquire(blocking=False):
            return False

        def run() -> None:
            try:
                work()
            finally:
                self._free_workers.release()

        self._executor.submit(run)
        return True

    def _run(self, node_id: int, work: Work, event_type: str) -> None:
        try:
            with self.task(node_id, locked=True) as task:
                try:
                    work(task)
                except locks.LockLost:
                    raise
                except Exception as exc:
                    if not isinstance(exc, DriverError | Invalid):
                        LOG.exception("node %s: %s failed", task.node.uuid, event_type)
                    task.session.rollback()
                    task.fail(event_type, failure_message(task, event_type, exc))
        except locks.LockLost as exc:
            LOG.warning("node %s: %s: %s", node_id, event_type, exc)
        except TransientDatabaseError:
            LOG.warning("node %s: the database gave up saving the outcome of %s", node_id,
                        event_type)
            self._fail_unsaved(node_id, event_type)
        except Exception:
            LOG.exception("node %s: could not record the outcome of %s", node_id, event_type)
        finally:
            try:
                self._unlock(node_id)
            finally:  # a release the database refused still gives the worker back
                self._free_workers.release()

    def _fail_unsaved(self, node_id: int, event_type: str) -> None:
        """The work ran but its outcome was not saved: fail the node (still locked) with the
        reason rather than leave it in its transitional state."""

        def record() -> None:
            with self.task(node_id, locked=True) as task:
                task.fail(event_type, failure_message(task, event_type, RuntimeError(
                    "the database gave up saving its outcome (a deadlock or a lock wait); "
                    "nothing of it was saved")))

        try:
            retrying_transient(record)
        except Exception:
            LOG.exception("node %s: could not record the outcome of %s", node_id, event_type)
