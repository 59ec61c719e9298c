"""The conductor manager: takes node locks, validates requests, hands long work to workers.

Synchronous work (boot device, validation, patches) runs in the caller's thread under the lock;
long work (provisioning, power changes) is prepared under the lock in the caller's thread, so
that errors reach the API user, then finished by a worker that releases the lock at the end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from services.common import states
from services.common.config import Settings
from services.common.db import Database
from services.common.exceptions import (
    Invalid,
    InvalidStateRequested,
    NodeInMaintenance,
    NodeNotFound,
    NoFreeConductorWorker,
)
from services.common.models import INTERFACES, Conductor, Node, utcnow
from services.conductor import flows, locks
from services.conductor.task import Task
from services.drivers.base import POWER_TARGETS, DriverError
from services.drivers.registry import Drivers

LOG = logging.getLogger(__name__)

Work = Callable[[Task], None]

# Verbs refused while a node is in maintenance (tear down, manage and abort stay possible).
MAINTENANCE_BLOCKED_EVENTS = frozenset({"deploy", "rebuild", "provide", "clean", "inspect",
                                        "adopt", "rescue", "unrescue"})


class ConductorManager:
    def __init__(self, db: Database, settings: Settings, drivers: Drivers) -> None:
        self.db = db
        self.settings = settings
        self.drivers = drivers
        self.host = settings.conductor_hostname
        self._executor = ThreadPoolExecutor(settings.conductor_workers, "conductor-worker")
        self._free_workers = threading.BoundedSemaphore(settings.conductor_workers)
        self._held: set[int] = set()
        self._held_guard = threading.Lock()
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._register()
        self._keeper = threading.Thread(target=self._keep_alive, name="conductor-keeper",
                                        daemon=True)
        self._keeper.start()

    def stop(self) -> None:
        self._stopping.set()
        self._executor.shutdown(wait=True)
        if self._keeper:
            self._keeper.join()
        with self.db.session() as session:
            conductor = session.scalar(select(Conductor).where(Conductor.hostname == self.host))
            if conductor:
                conductor.online = False

    def _register(self) -> None:
        with self.db.session() as session:
            conductor = session.scalar(select(Conductor).where(Conductor.hostname == self.host))
            if conductor is None:
                conductor = Conductor(hostname=self.host)
                session.add(conductor)
            conductor.conductor_group = self.settings.conductor_group
            conductor.hardware_types = sorted(self.drivers.hardware_types)
            conductor.online = True
            conductor.heartbeat_at = utcnow()

    def _keep_alive(self) -> None:
        """Heartbeat, and renew the leases of the locks this conductor holds."""
        period = min(self.settings.heartbeat_interval_s, self.settings.reservation_lease_s / 3)
        while not self._stopping.wait(period):
            try:
                with self._held_guard:
                    held = list(self._held)
                locks.renew(self.db, held, self.host, self.settings.reservation_lease_s)
                with self.db.session() as session:
                    conductor = session.scalar(
                        select(Conductor).where(Conductor.hostname == self.host)
                    )
                    if conductor:
                        conductor.heartbeat_at = utcnow()
                        conductor.online = True
            except Exception:
                LOG.exception("conductor heartbeat failed; retrying")

    def alive_conductors(self) -> list[Conductor]:
        timeout = timedelta(seconds=self.settings.heartbeat_interval_s * 3)
        with self.db.session() as session:
            rows = session.scalars(
                select(Conductor).where(Conductor.online.is_(True),
                                        Conductor.heartbeat_at > utcnow() - timeout)
            )
            return list(rows)

    # -- locks and tasks -------------------------------------------------------------------

    @contextmanager
    def _task(self, node_id: int) -> Iterator[Task]:
        with self.db.session() as session:
            node = session.get(Node, node_id)
            if node is None:
                raise NodeNotFound(str(node_id))
            yield Task(session, node, self.drivers.for_node(node), self.host)

    def _lock(self, node: Node) -> None:
        locks.acquire(self.db, node.id, node.uuid, self.host, self.settings.reservation_lease_s)
        with self._held_guard:
            self._held.add(node.id)

    def _unlock(self, node_id: int) -> None:
        with self._held_guard:
            self._held.discard(node_id)
        locks.release(self.db, node_id, self.host)

    @contextmanager
    def locked(self, node: Node) -> Iterator[Task]:
        """Synchronous work on a node under its lock; committed when the block ends."""
        self._lock(node)
        try:
            with self._task(node.id) as task:
                yield task
        finally:
            self._unlock(node.id)

    def _start(self, node: Node, prepare: Work, work: Work, event_type: str) -> None:
        """Prepare under the lock here, then finish in a worker, which releases the lock."""
        if not self._free_workers.acquire(blocking=False):
            raise NoFreeConductorWorker()
        try:
            self._lock(node)
        except BaseException:
            self._free_workers.release()
            raise
        try:
            with self._task(node.id) as task:
                prepare(task)
            self._executor.submit(self._run, node.id, work, event_type)
        except BaseException:
            self._unlock(node.id)
            self._free_workers.release()
            raise

    def _run(self, node_id: int, work: Work, event_type: str) -> None:
        try:
            with self._task(node_id) as task:
                try:
                    work(task)
                except Exception as exc:
                    if not isinstance(exc, DriverError | Invalid):
                        LOG.exception("node %s: %s failed", task.node.uuid, event_type)
                    task.session.rollback()
                    task.fail(event_type, flows.failure_message(task, event_type, exc))
        except Exception:
            LOG.exception("node %s: could not record the outcome of %s", node_id, event_type)
        finally:
            self._unlock(node_id)
            self._free_workers.release()

    # -- provisioning ----------------------------------------------------------------------

    def do_provisioning_action(self, node: Node, target: str, **options: Any) -> None:
        event = states.API_TARGET_EVENTS[target]
        if not states.allows(node.provision_state, event):
            raise InvalidStateRequested(target, node.uuid, node.provision_state)
        if node.maintenance and event in MAINTENANCE_BLOCKED_EVENTS:
            raise NodeInMaintenance(target, node.uuid)

        def check_state(task: Task) -> None:
            # The state may have changed between the caller's read and the lock.
            if not states.allows(task.node.provision_state, event):
                raise InvalidStateRequested(target, task.node.uuid, task.node.provision_state)

        if flows.is_immediate(node, event):
            with self.locked(node) as task:
                check_state(task)
                flows.immediate(task, event)
            return

        prepare_step, work = flows.provisioning(event, options)

        def prepare(task: Task) -> None:
            check_state(task)
            prepare_step(task)

        self._start(node, prepare, work, flows.EVENT_TYPES[event])

    # -- power and management --------------------------------------------------------------

    def change_power_state(self, node: Node, target: str, timeout: int | None = None) -> None:
        if target not in POWER_TARGETS:
            raise Invalid(f"Invalid power state target {target!r}, expected one of "
                          f"{', '.join(POWER_TARGETS)}.")
        prepare, work = flows.power_change(target)
        self._start(node, prepare, work, "power")

    def set_boot_device(self, node: Node, device: str, persistent: bool) -> None:
        with self.locked(node) as task:
            supported = task.driver.management.get_supported_boot_devices(task)
            if device not in supported:
                raise Invalid(f"Invalid boot device {device}, supported boot devices for node "
                              f"{node.uuid} are: {', '.join(supported)}.")
            try:
                task.driver.management.validate(task)
                task.driver.management.set_boot_device(task, device, persistent)
            except DriverError as exc:
                raise Invalid(str(exc)) from exc

    def get_boot_device(self, node: Node) -> dict[str, Any]:
        with self._task(node.id) as task:
            return task.driver.management.get_boot_device(task)

    def get_supported_boot_devices(self, node: Node) -> list[str]:
        with self._task(node.id) as task:
            return task.driver.management.get_supported_boot_devices(task)

    def validate(self, node: Node) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        with self._task(node.id) as task:
            for name in INTERFACES:
                interface = task.driver.interfaces[name]
                if not getattr(interface, "supported", True):
                    result[name] = {"result": None, "reason": "not supported"}
                    continue
                try:
                    interface.validate(task)
                    result[name] = {"result": True}
                except DriverError as exc:
                    result[name] = {"result": False, "reason": str(exc)}
        return result
