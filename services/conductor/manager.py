"""The conductor manager: takes node locks, checks requests, hands long work to workers.

Its public methods are the conductor API. They take plain values (node and port UUIDs, dicts),
so the API calls them in process (``enclume-aio``) or over RPC (``services/conductor/rpc.py``)
alike, and raise the same exceptions either way.

Synchronous work (boot device, validation, updates) runs in the caller's thread under the lock;
long work (provisioning, power changes) is prepared under the lock in the caller's thread, so
that refusals reach the API user and change nothing, then finished by a worker that releases the
lock at the end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.common import enabled_hardware, states
from services.common.config import Settings
from services.common.db import Database
from services.common.exceptions import (
    Conflict,
    EnclumeError,
    Invalid,
    InvalidStateRequested,
    NodeInMaintenance,
    NodeLocked,
    NodeNotFound,
    NoFreeConductorWorker,
    NotFound,
    TemporaryFailure,
    conflict_from_integrity,
)
from services.common.lookups import node_uuid_of_port, node_value
from services.common.membership import Membership
from services.common.models import Conductor, Node, Port, utcnow
from services.common.node_fields import INTERFACES
from services.common.validation import traits as check_traits
from services.conductor import agent, discovery, flows, locks
from services.conductor.task import Task
from services.drivers.agent_client import AGENT_TOKEN
from services.drivers.base import POWER_TARGETS, DriverError
from services.drivers.registry import Drivers

LOG = logging.getLogger(__name__)

Work = Callable[[Task], None]

# Verbs refused while a node is in maintenance (tear down, manage and abort stay possible).
MAINTENANCE_BLOCKED_EVENTS = frozenset({"deploy", "rebuild", "provide", "clean", "inspect",
                                        "adopt", "rescue", "unrescue"})
DEPLOY_EVENTS = frozenset({"deploy", "rebuild"})
DELETABLE_STATES = frozenset({states.S.ENROLL, states.S.MANAGEABLE, states.S.AVAILABLE,
                              states.S.INSPECTFAIL, states.S.ADOPTFAIL, states.S.CLEANFAIL})


class ConductorManager:
    def __init__(self, db: Database, settings: Settings, drivers: Drivers,
                 membership: Membership | None = None, rpc_address: str | None = None) -> None:
        """``rpc_address`` is where other processes reach this conductor (None: in process)."""
        self.db = db
        self.rpc_address = rpc_address
        self.settings = settings
        self.drivers = drivers
        self.membership = membership or Membership(db, settings)
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
        # Locks under our name are from before a restart: nothing holds them any more.
        locks.release_all(self.db, self.host)
        self.membership.refresh_now()
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

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    def _register(self) -> None:
        with self.db.session() as session:
            conductor = session.scalar(select(Conductor).where(Conductor.hostname == self.host))
            if conductor is None:
                conductor = Conductor(hostname=self.host)
                session.add(conductor)
            conductor.conductor_group = self.settings.conductor_group
            conductor.hardware_types = sorted(self.drivers.hardware_types)
            conductor.rpc_address = self.rpc_address
            conductor.online = True
            conductor.heartbeat_at = utcnow()
            session.flush()
            enabled_hardware.register(session, conductor.id, self.drivers.hardware_types.values())

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
                    if conductor is None:
                        continue
                    conductor.heartbeat_at = utcnow()
                    conductor.online = True
            except Exception:
                LOG.exception("conductor heartbeat failed; retrying")

    # -- locks and tasks -------------------------------------------------------------------

    def _node_id(self, node_uuid: str) -> int:
        node_id: int = node_value(self.db, node_uuid, Node.id)
        return node_id

    @contextmanager
    def task(self, node_id: int, locked: bool = False) -> Iterator[Task]:
        """A node and its driver in a session of its own; ``locked``: the caller holds the
        node's lock, and every commit checks it still does (`locks.fence`)."""
        with self.db.session() as session:
            if locked:
                locks.fence(session, node_id, self.host, self.settings.reservation_lease_s)
            node = session.get(Node, node_id)
            if node is None:
                raise NodeNotFound(str(node_id))
            yield Task(session, node, self.drivers.for_node(node), self.host)

    def _lock(self, node_id: int, node_uuid: str) -> None:
        locks.acquire(self.db, node_id, node_uuid, self.host, self.settings.reservation_lease_s)
        with self._held_guard:
            self._held.add(node_id)

    def _unlock(self, node_id: int) -> None:
        with self._held_guard:
            self._held.discard(node_id)
        locks.release(self.db, node_id, self.host)

    @contextmanager
    def locked(self, node_uuid: str) -> Iterator[Task]:
        """Synchronous work on a node under its lock; committed when the block ends."""
        node_id = self._node_id(node_uuid)
        self._lock(node_id, node_uuid)
        try:
            with self.task(node_id, locked=True) as task:
                yield task
        finally:
            self._unlock(node_id)

    def _reserve(self, node_id: int, node_uuid: str) -> None:
        """Take a free worker and the node's lock, or neither (NoFreeConductorWorker, 409)."""
        if not self._free_workers.acquire(blocking=False):
            raise NoFreeConductorWorker()
        try:
            self._lock(node_id, node_uuid)
        except BaseException:
            self._free_workers.release()
            raise

    def _start(self, node_uuid: str, prepare: Work, work: Work, event_type: str) -> None:
        """Prepare under the lock here, then finish in a worker, which releases the lock."""
        node_id = self._node_id(node_uuid)
        self._reserve(node_id, node_uuid)
        try:
            with self.task(node_id, locked=True) as task:
                prepare(task)
            self._executor.submit(self._run, node_id, work, event_type)
        except BaseException:
            self._unlock(node_id)
            self._free_workers.release()
            raise

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
                    task.fail(event_type, flows.failure_message(task, event_type, exc))
        except locks.LockLost as exc:
            LOG.warning("node %s: %s: %s", node_id, event_type, exc)
        except Exception:
            LOG.exception("node %s: could not record the outcome of %s", node_id, event_type)
        finally:
            self._unlock(node_id)
            self._free_workers.release()

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

    # -- provisioning ----------------------------------------------------------------------

    def do_provisioning_action(self, node_uuid: str, target: str,
                               options: dict[str, Any] | None = None) -> None:
        options = options or {}
        event = states.API_TARGET_EVENTS[target]
        with self.db.session() as session:
            node = session.scalar(select(Node).where(Node.uuid == node_uuid))
            if node is None:
                raise NodeNotFound(node_uuid)
            state, maintenance = node.provision_state, node.maintenance
        if not states.allows(state, event):
            raise InvalidStateRequested(target, node_uuid, state)
        if maintenance and event in MAINTENANCE_BLOCKED_EVENTS:
            raise NodeInMaintenance(target, node_uuid)

        def check_state(task: Task) -> None:
            # The state may have changed between the read above and the lock.
            if not states.allows(task.node.provision_state, event):
                raise InvalidStateRequested(target, task.node.uuid, task.node.provision_state)
            if event in DEPLOY_EVENTS:
                self._check_deploy_limit(task)

        if flows.is_immediate(state, event):
            with self.locked(node_uuid) as task:
                check_state(task)
                flows.immediate(task, event)
            return

        prepare_step, work = flows.provisioning(event, options)

        def prepare(task: Task) -> None:
            check_state(task)
            prepare_step(task)

        self._start(node_uuid, prepare, work, flows.EVENT_TYPES[event])

    def _check_deploy_limit(self, task: Task) -> None:
        deploying = task.session.scalar(
            select(func.count()).select_from(Node).where(
                Node.provision_state.in_([states.S.DEPLOYING.value, states.S.DEPLOYWAIT.value])
            )
        )
        if (deploying or 0) >= self.settings.max_concurrent_deploys:
            raise TemporaryFailure(
                f"Too many nodes are deploying ({deploying}, the limit is "
                f"{self.settings.max_concurrent_deploys}); please retry later.")

    # -- the agent in the deploy ramdisk ---------------------------------------------------

    def issue_agent_token(self, node_uuid: str) -> str | None:
        """The node's one-time agent token if none was issued yet, else None (409 if locked)."""
        with self.locked(node_uuid) as task:
            return agent.issue_token(task)

    def heartbeat(self, node_uuid: str, callback_url: str, agent_token: str | None,
                  agent_version: str | None = None) -> None:
        """Check an agent's heartbeat and continue the node's work in a worker; returns at once.

        Refused (nothing recorded) in a state that expects no agent (409), without a token
        (401) or with a wrong one (403). A node that is busy skips this heartbeat.
        """
        problem = agent.callback_url_problem(callback_url)
        if problem:
            raise Invalid(problem)
        agent.check_version(agent_version)
        with self.db.session() as session:
            row = session.execute(select(Node.id, Node.provision_state,
                                         Node.driver_internal_info)
                                  .where(Node.uuid == node_uuid)).first()
        if row is None:
            raise NodeNotFound(node_uuid)
        agent.check_heartbeat(node_uuid, row.provision_state,
                              (row.driver_internal_info or {}).get(AGENT_TOKEN), agent_token)
        assert agent_token is not None
        work = agent.heartbeat_work(callback_url, agent_version, agent_token)
        if not self.start_on_locked(row.id, node_uuid, work,
                                    agent.event_type(row.provision_state)):
            LOG.debug("node %s is busy: its next heartbeat continues", node_uuid)

    # -- discovery of unknown machines ------------------------------------------------------

    def process_discovery(self, node_uuid: str, inventory: dict[str, Any],
                          new_node: dict[str, Any] | None = None, boot_mac: str | None = None,
                          applied_rules: list[str] | None = None) -> dict[str, Any]:
        """Enroll an unknown machine as node ``node_uuid`` (``new_node``: its checked field
        values, that UUID included), or update the known node ``node_uuid`` from the inventory
        its discovery ramdisk posted (409 when it is busy). A locked node is 503: retry."""
        if new_node is not None:
            if new_node.get("uuid") != node_uuid:
                raise Invalid("A discovered node's values must carry its UUID.")
            try:
                with self.db.session() as session:
                    node = discovery.enroll(session, dict(new_node), inventory, boot_mac,
                                            list(applied_rules or []), self.drivers, self.host,
                                            self.settings.discovery_max_enroll_nodes)
                    result = discovery.summary(node, created=True)
            except IntegrityError:
                raise TemporaryFailure("Another request enrolled this machine at the same "
                                       "moment; retry to update it.") from None
            LOG.info("discovery: enrolled node %s (%s)", node_uuid, node.driver)
            return result
        try:
            with self.locked(node_uuid) as task:
                discovery.update(task, inventory)
                result = discovery.summary(task.node, created=False)
        except NodeLocked as exc:
            LOG.info("discovery: node %s is busy: %s", node_uuid, exc.message)
            raise TemporaryFailure(discovery.BUSY) from None
        LOG.info("discovery: node %s updated from its inventory", node_uuid)
        return result

    # -- power and management --------------------------------------------------------------

    def change_power_state(self, node_uuid: str, target: str, timeout: int | None = None
                           ) -> None:
        if target not in POWER_TARGETS:
            raise Invalid(f"Invalid power state target {target!r}, expected one of "
                          f"{', '.join(POWER_TARGETS)}.")
        prepare, work = flows.power_change(target)
        self._start(node_uuid, prepare, work, "power")

    def set_boot_device(self, node_uuid: str, device: str, persistent: bool) -> None:
        with self.locked(node_uuid) as task:
            supported = task.driver.management.get_supported_boot_devices(task)
            if device not in supported:
                raise Invalid(f"Invalid boot device {device}, supported boot devices for node "
                              f"{node_uuid} are: {', '.join(supported)}.")
            try:
                task.driver.management.validate(task)
            except DriverError as exc:
                raise Invalid(str(exc)) from exc
            try:
                task.driver.management.set_boot_device(task, device, persistent)
            except DriverError as exc:
                raise EnclumeError(f"Failed to set the boot device of node {node_uuid}: "
                                   f"{exc}") from exc

    def get_boot_device(self, node_uuid: str) -> dict[str, Any]:
        with self.task(self._node_id(node_uuid)) as task:
            try:
                return task.driver.management.get_boot_device(task)
            except DriverError as exc:
                # A BMC that fails is the server side's problem, as in Ironic (500).
                raise EnclumeError(f"Failed to get the boot device of node {node_uuid}: "
                                   f"{exc}") from exc

    def get_supported_boot_devices(self, node_uuid: str) -> list[str]:
        with self.task(self._node_id(node_uuid)) as task:
            return task.driver.management.get_supported_boot_devices(task)

    def validate(self, node_uuid: str) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        with self.task(self._node_id(node_uuid)) as task:
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

    # -- changes to nodes and ports --------------------------------------------------------

    def update_node(self, node_uuid: str, values: dict[str, Any]) -> None:
        """Write field values the API has already checked, under the node's lock."""
        try:
            with self.locked(node_uuid) as task:
                node = task.node
                new_instance = values.get("instance_uuid")
                if new_instance and node.instance_uuid and new_instance != node.instance_uuid:
                    raise Conflict(f"Node {node.uuid} is associated with instance "
                                   f"{node.instance_uuid}; remove it first.")
                busy = states.BUSY_STATES | states.WAIT_STATES
                if values.get("driver", node.driver) != node.driver and (
                    node.provision_state in busy
                ):
                    raise Conflict(f"Can not change the driver of node {node.uuid} while it is "
                                   f"in state \"{node.provision_state}\".")
                for field, value in values.items():
                    setattr(node, field, value)
                task.session.flush()
        except IntegrityError as exc:
            raise conflict_from_integrity(exc, values) from None

    def destroy_node(self, node_uuid: str) -> None:
        with self.locked(node_uuid) as task:
            node = task.node
            if node.instance_uuid:
                raise Conflict(f"Node {node.uuid} is associated with instance "
                               f"{node.instance_uuid}.")
            if node.protected:
                raise Conflict(f"Node {node.uuid} is protected and can not be deleted.")
            if node.provision_state not in DELETABLE_STATES and not (
                node.maintenance and node.provision_state not in states.BUSY_STATES
            ):
                raise Conflict(f"Can not delete node {node.uuid} while it is in state "
                               f"\"{node.provision_state}\".")
            task.session.delete(node)

    def update_traits(self, node_uuid: str, add: list[str] | None = None,
                      remove: list[str] | None = None, replace: list[str] | None = None) -> None:
        """Replace, add to or remove from a node's traits; ``remove=[]`` removes them all."""
        with self.locked(node_uuid) as task:
            traits = list(task.node.traits) if replace is None else list(replace)
            if remove is not None:
                missing = [t for t in remove if t not in traits]
                if missing:
                    raise NotFound(f"Node {node_uuid} has no trait {', '.join(missing)}.")
                traits = [t for t in traits if t not in remove] if remove else []
            task.node.traits = check_traits(traits + list(add or []))

    def update_port(self, port_uuid: str, values: dict[str, Any],
                    node_uuid: str | None = None) -> None:
        """Write checked port values under the lock of the port's node; maybe move the port."""
        try:
            with self.locked(node_uuid_of_port(self.db, port_uuid)) as task:
                port = task.session.scalar(select(Port).where(Port.uuid == port_uuid))
                if port is None:
                    raise NotFound(f"Port {port_uuid} could not be found.")
                if node_uuid is not None and node_uuid != task.node.uuid:
                    new_node = task.session.scalar(select(Node.id).where(Node.uuid == node_uuid))
                    if new_node is None:
                        raise NodeNotFound(node_uuid)
                    port.node_id = new_node
                for field, value in values.items():
                    setattr(port, field, value)
                task.session.flush()
        except IntegrityError as exc:
            raise conflict_from_integrity(exc, values) from None

    def destroy_port(self, port_uuid: str) -> None:
        with self.locked(node_uuid_of_port(self.db, port_uuid)) as task:
            port = task.session.scalar(select(Port).where(Port.uuid == port_uuid))
            if port is not None:
                task.session.delete(port)
