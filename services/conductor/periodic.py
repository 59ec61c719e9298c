"""What a conductor does on its own, for the nodes the hash ring gives it.

- takeover: nodes whose work was cut off (a busy state or a power change with no live lock) fail
  cleanly with a reason; active nodes another conductor prepared get their boot configuration
  prepared again by their new owner; enabled serial consoles follow their nodes across the
  ring (console_ops.py);
- callback timeouts: nodes that waited for an agent longer than ENCLUME_CALLBACK_TIMEOUT_S fail;
- allocations left ``allocating`` (their conductor died) are decided;
- power sync: the power state of every idle node is read from its driver, a few at a time;
- timetable and room jobs, in a thread of their own every ENCLUME_CLASSROOM_INTERVAL_S: the
  sessions of the rooms the ring gives this conductor run (timetable.py) and their jobs
  advance (room_jobs.py); hourly, students' states past their retention go
  (state_retention.py).

Each conductor selects its own nodes with a range query over its arcs of the ring.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update

from services.common import states
from services.common.metrics import POWER_SYNC_NODES, POWER_SYNC_SECONDS
from services.common.models import Node, utcnow
from services.common.secrets import scrub
from services.conductor import allocations, locks
from services.conductor.flows import rescue
from services.conductor.flows.steps import fail_with
from services.conductor.interface import ConductorAPI
from services.conductor.manager import ConductorManager
from services.conductor.room_jobs import JobAdvancer
from services.conductor.rpc import RpcClient
from services.conductor.runner import Work
from services.conductor.state_retention import PERIOD_S, remove_expired_states
from services.conductor.task import Task
from services.conductor.timetable import TimetableRunner
from services.drivers.base import HEALTH_STATES
from services.drivers.driver_errors import UnsupportedDriverExtension

LOG = logging.getLogger(__name__)

ORPHANED_ALLOCATION_S = 30.0  # a conductor decides an allocation in milliseconds
# The node history event type of the operation each busy state belongs to.
BUSY_EVENT_TYPES = {
    states.S.VERIFYING: "verify", states.S.DEPLOYING: "deploying",
    states.S.DELETING: "unprovision", states.S.CLEANING: "cleaning",
    states.S.INSPECTING: "introspection", states.S.ADOPTING: "adoption",
    states.S.RESCUING: "rescue", states.S.UNRESCUING: "rescue",
}


@dataclass
class PowerSyncReport:
    nodes: int
    changed: int
    failed: int
    seconds: float


def _conductor_api(manager: ConductorManager) -> ConductorAPI:
    """This conductor in process (enclume-aio), else the RPC client: a room's PCs may be owned
    by other conductors, whose nodes only they work on."""
    if manager.rpc_address is None:
        return manager
    return RpcClient(manager.db, manager.settings, manager.membership)


class PeriodicTasks:
    def __init__(self, manager: ConductorManager) -> None:
        self.manager = manager
        self.settings = manager.settings
        self.db = manager.db
        self._thread: threading.Thread | None = None
        self._classroom_thread: threading.Thread | None = None
        self.room_jobs = JobAdvancer(self.db, manager.membership, manager.host,
                                     self.settings.conductor.group, _conductor_api(manager),
                                     self.settings)
        self.timetable = TimetableRunner(self.db, self.settings, manager.membership,
                                         manager.host)
        self.last_power_sync: PowerSyncReport | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="conductor-periodic",
                                        daemon=True)
        self._thread.start()
        self._classroom_thread = threading.Thread(target=self._classroom_loop,
                                                  name="conductor-classroom", daemon=True)
        self._classroom_thread.start()

    def stop(self) -> None:
        self.manager.stopping.set()
        for thread in (self._thread, self._classroom_thread):
            if thread:
                thread.join()

    def _classroom_loop(self) -> None:
        """The timetable and the room jobs, on their own (shorter) period: a job's PCs move
        on at each pass."""
        next_retention = time.monotonic()
        while not self.manager.stopping.wait(self.settings.classroom.interval_s):
            try:
                self.timetable.run()
                self.room_jobs.advance()
                if time.monotonic() >= next_retention:
                    remove_expired_states(self.db, self.settings, utcnow())
                    next_retention = time.monotonic() + PERIOD_S
            except Exception:
                LOG.exception("timetable or room jobs failed; trying again next period")

    def _loop(self) -> None:
        next_power_sync = time.monotonic() + self.settings.conductor.power_sync_interval_s
        while not self.manager.stopping.wait(self.settings.conductor.periodic_interval_s):
            try:
                self.take_over()
                self.manager.follow_the_ring()
                self.fail_callback_timeouts()
                self.resume_allocations()
                if time.monotonic() >= next_power_sync:
                    self.last_power_sync = self.sync_power_states()
                    next_power_sync = (time.monotonic()
                                       + self.settings.conductor.power_sync_interval_s)
            except Exception:
                LOG.exception("periodic tasks failed; trying again next period")

    def owned(self) -> ColumnElement[bool]:
        return self.manager.membership.owned_by(self.manager.host,
                                                self.settings.conductor.group)

    def _rows(self, *conditions: Any) -> list[Any]:
        with self.db.session() as session:
            return list(session.execute(
                select(Node.id, Node.uuid, Node.reservation, Node.provision_state)
                .where(self.owned(), *conditions)))

    # -- takeover --------------------------------------------------------------------------

    def take_over(self) -> int:
        """Fail cut-off work and re-prepare adopted active nodes; returns nodes handled."""
        handled = 0
        busy = [s.value for s in states.BUSY_STATES]
        for row in self._rows(Node.provision_state.in_(busy), locks.is_free()):
            handled += self.manager.start_on_locked(
                row.id, row.uuid, _fail_cut_off(row.reservation), "takeover")
        for row in self._rows(Node.target_power_state.is_not(None), locks.is_free()):
            handled += self.manager.start_on_locked(
                row.id, row.uuid, _clear_power_target(row.reservation), "takeover")
        active = self._rows(
            Node.provision_state == states.S.ACTIVE.value,
            or_(Node.conductor_affinity.is_(None),
                Node.conductor_affinity != self.manager.host),
            locks.is_free())
        for row in active:
            handled += self.manager.start_on_locked(row.id, row.uuid, _prepare_boot_again,
                                                    "takeover")
        return handled

    def resume_allocations(self) -> int:
        """Decide the allocations left ``allocating`` for ORPHANED_ALLOCATION_S: those the
        ring of the first conductor group (where the API sends them) gives this conductor."""
        groups = sorted({m.conductor_group for m in self.manager.membership.members().values()})
        if not groups or groups[0] != self.settings.conductor.group:
            return 0
        resumed = 0
        before = utcnow() - timedelta(seconds=ORPHANED_ALLOCATION_S)
        for allocation_uuid in allocations.orphaned(self.db, before):
            owner = self.manager.membership.owner(groups[0], allocation_uuid)
            if owner is not None and owner.hostname == self.manager.host:
                self.manager.process_allocation(allocation_uuid)
                resumed += 1
        return resumed

    # -- agent callbacks -------------------------------------------------------------------

    def fail_callback_timeouts(self) -> int:
        """Fail the nodes that waited for their agent too long: rescue wait after its own
        timeout (0: never), the other wait states after ENCLUME_CALLBACK_TIMEOUT_S."""
        conductor = self.settings.conductor
        waiting = [s.value for s in states.WAIT_STATES if s != states.S.RESCUEWAIT]
        started = self._start_timeouts(waiting, conductor.callback_timeout_s,
                                       _fail_timeout(conductor.callback_timeout_s))
        if conductor.rescue_callback_timeout_s > 0:
            started += self._start_timeouts([states.S.RESCUEWAIT.value],
                                             conductor.rescue_callback_timeout_s,
                                             _fail_rescue_timeout)
        return started

    def _start_timeouts(self, waiting: list[str], timeout_s: float, work: Work) -> int:
        deadline = utcnow() - timedelta(seconds=timeout_s)
        rows = self._rows(Node.provision_state.in_(waiting),
                          Node.provision_updated_at < deadline, locks.is_free())
        return sum(self.manager.start_on_locked(row.id, row.uuid, work, "provisioning")
                   for row in rows)

    # -- power -----------------------------------------------------------------------------

    def sync_power_states(self) -> PowerSyncReport:
        """Read every idle node's power state; nodes whose BMC keeps failing go to maintenance.

        Nodes in maintenance for ``power failure`` are tried as well (unless
        ENCLUME_POWER_FAILURE_RECOVERY is off) and leave maintenance when their BMC answers.
        Left out as by Ironic's ``_sync_power_states`` and ``_power_failure_recovery``
        (ironic/conductor/manager.py): nodes being worked on (locked or busy), with a power
        change under way (``target_power_state``), in ``SYNC_EXCLUDED_STATES`` (recovery:
        in ``enroll``). Discovered nodes are all in ``enroll`` until an operator manages them:
        their BMC address and password came from an inventory anyone may post
        (services/discovery/untrusted.py).
        """
        started = time.monotonic()
        busy = [s.value for s in states.BUSY_STATES]
        excluded = [s.value for s in states.POWER_SYNC_EXCLUDED_STATES]
        in_scope = and_(Node.maintenance.is_(False), Node.provision_state.not_in(excluded))
        if self.settings.conductor.power_failure_recovery:
            in_scope = or_(in_scope, and_(Node.fault == POWER_FAILURE,
                                          Node.provision_state != states.S.ENROLL.value))
        rows = self._rows(in_scope, Node.provision_state.not_in(busy),
                          Node.target_power_state.is_(None), locks.is_free())
        workers = max(1, self.settings.conductor.power_sync_workers)
        with ThreadPoolExecutor(workers, "power-sync") as pool:
            outcomes = list(pool.map(self._sync_one, [row.id for row in rows]))
        report = PowerSyncReport(len(rows), outcomes.count("changed"), outcomes.count("failed"),
                                 time.monotonic() - started)
        POWER_SYNC_SECONDS.observe(report.seconds)
        for outcome in set(outcomes):
            POWER_SYNC_NODES.labels(outcome).inc(outcomes.count(outcome))
        LOG.info("power sync: %d nodes, %d changed, %d failed, %.2fs", report.nodes,
                 report.changed, report.failed, report.seconds)
        return report

    def _sync_one(self, node_id: int) -> str:
        try:
            with self.manager.task(node_id) as task:
                try:
                    actual = task.driver.power.get_power_state(task)
                except Exception as exc:
                    LOG.warning("power sync of node %s failed: %s", task.node.uuid, exc)
                    self._power_failed(task, exc)
                    return "failed"
                outcome = self._power_read(task, actual)
                read_health(task)
                return outcome
        except Exception:
            LOG.exception("power sync of node %s could not be recorded", node_id)
            return "failed"

    def _power_read(self, task: Task, actual: str | None) -> str:
        node = task.node
        values: dict[str, Any] = {}
        if actual != node.power_state:
            values["power_state"] = actual
        recovered = node.maintenance and node.fault == POWER_FAILURE
        if recovered:
            values.update(maintenance=False, fault=None, maintenance_reason=None)
        if node.driver_internal_info.get(FAILURES_KEY):
            info = dict(node.driver_internal_info)
            info.pop(FAILURES_KEY)
            values["driver_internal_info"] = info
        if not values or not _update_if_free(task, values):
            return "same"
        if recovered:
            task.record("monitoring", "The BMC answers again: power state "
                                      f"{actual}; maintenance for power failure ended.")
        if "power_state" in values:
            task.record("monitoring", f"Power state changed out of band from "
                                      f"{node.power_state} to {actual}.")
            return "changed"
        return "same"

    def _power_failed(self, task: Task, error: Exception) -> None:
        node = task.node
        if node.maintenance:
            return  # already in maintenance for power failure: recovery keeps trying
        failures = int(node.driver_internal_info.get(FAILURES_KEY, 0)) + 1
        values: dict[str, Any] = {
            "driver_internal_info": {**node.driver_internal_info, FAILURES_KEY: failures}}
        limit = self.settings.conductor.power_sync_max_retries
        if failures >= limit:
            reason = scrub(f"Power state sync failed {failures} times in a row: {error}")
            values.update(maintenance=True, fault=POWER_FAILURE, maintenance_reason=reason)
        if _update_if_free(task, values) and failures >= limit:
            task.record("monitoring", f"{values['maintenance_reason']}. The node is in "
                                      "maintenance until its BMC answers again.",
                        severity="ERROR")


def read_health(task: Task) -> None:
    """As Ironic's power sync: the hardware's health from the management interface (API
    1.109), recorded when it changed; an interface that cannot tell is skipped, a failure
    only logged."""
    try:
        health = task.driver.management.get_node_health(task)
    except UnsupportedDriverExtension:
        return
    except Exception as exc:
        LOG.warning("could not read the health of node %s: %s", task.node.uuid, exc)
        return
    if health not in (None, *HEALTH_STATES):
        LOG.warning("node %s reports the unknown health %r: ignored", task.node.uuid, health)
        return
    old = task.node.health
    if health != old and _update_if_free(task, {"health": health}):
        task.record("monitoring", f"Node health status changed: health='{health or 'None'}' "
                                  f"(previously '{old or 'None'}')")


POWER_FAILURE = "power failure"
FAILURES_KEY = "power_sync_failures"


def _update_if_free(task: Task, values: dict[str, Any]) -> bool:
    """Write ``values`` only while nobody works on the node: work sets the power state itself."""
    changed = task.session.execute(
        update(Node)
        .where(and_(Node.id == task.node.id, locks.is_free()))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(changed)


def _fail_cut_off(previous_holder: str | None) -> Work:
    def work(task: Task) -> None:
        state = states.ProvisionState(task.node.provision_state)
        if state not in states.BUSY_STATES:
            return  # someone finished it meanwhile
        holder = previous_holder or "a conductor"
        task.fail(BUSY_EVENT_TYPES[state],
                  f"The conductor {holder} stopped while the node was {state.value}; the "
                  f"operation did not finish and can be retried.")

    return work


def _clear_power_target(previous_holder: str | None) -> Work:
    def work(task: Task) -> None:
        if task.node.target_power_state is None:
            return
        message = (f"The conductor {previous_holder or 'working on it'} stopped before the power "
                   f"change to {task.node.target_power_state} finished.")
        task.node.target_power_state = None
        task.node.last_error = message
        task.record("conductor", message, severity="ERROR")

    return work


def _prepare_boot_again(task: Task) -> None:
    if task.node.provision_state != states.S.ACTIVE:
        return
    task.driver.boot.prepare_instance(task)
    previous = task.node.conductor_affinity
    task.node.conductor_affinity = task.conductor
    task.record("takeover", f"Conductor {task.conductor} took over the node from "
                            f"{previous or 'no conductor'}.")


def _fail_rescue_timeout(task: Task) -> None:
    if task.node.provision_state == states.S.RESCUEWAIT:
        rescue.fail_timeout(task)


def _fail_timeout(timeout_s: float) -> Work:
    def work(task: Task) -> None:
        if task.node.provision_state not in states.WAIT_STATES:
            return
        # Powered off and its ramdisk boot removed, as after any failure with an agent.
        fail_with(task, "provisioning", f"Timeout reached while waiting for callback "
                                              f"for node {task.node.uuid} ({timeout_s:.0f} s).")

    return work
