"""The conductor API: checks requests and turns them into work under node locks.

Its public methods are the conductor API. They take plain values (node and port UUIDs, dicts),
so the API calls them in process (``enclume-aio``) or over RPC (``services/conductor/rpc.py``)
alike, and raise the same exceptions either way.

Synchronous work (boot device, validation, updates) runs in the caller's thread under the lock;
long work (provisioning, power changes) is prepared under the lock in the caller's thread, so
that refusals reach the API user and change nothing, then finished by a worker that releases the
lock at the end. The locks and workers are the task runner's (``runner.py``); the conductor's
registration, heartbeat and lease renewal are its life cycle's (``lifecycle.py``); what each
verb does is in the flow modules (``services/conductor/flows/``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from services.common import agent_checks, fast_track, states
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
    NotFound,
    TemporaryFailure,
    conflict_from_integrity,
)
from services.common.membership import Membership
from services.common.models import Allocation, Node
from services.common.node_fields import INTERFACES
from services.common.optimistic import check_unchanged
from services.common.secrets import scrub
from services.common.validation import traits as check_traits
from services.conductor import agent, allocations, discovery, flows
from services.conductor.allocations import AllocationOperations
from services.conductor.classroom_ops import ClassroomOperations
from services.conductor.console_ops import ConsoleOperations
from services.conductor.flows import boot_mode, power, vmedia
from services.conductor.flows.steps import event_type
from services.conductor.lifecycle import ConductorLifecycle
from services.conductor.port_ops import PortOperations
from services.conductor.runner import TaskRunner
from services.conductor.task import Task
from services.conductor.volume_ops import VolumeOperations
from services.drivers.base import POWER_TARGETS, DriverError
from services.drivers.registry import Drivers

LOG = logging.getLogger(__name__)

# Verbs refused while a node is in maintenance (tear down, manage and abort stay possible).
MAINTENANCE_BLOCKED_EVENTS = frozenset({"deploy", "rebuild", "provide", "clean", "inspect",
                                        "adopt", "rescue", "unrescue"})
DEPLOY_EVENTS = frozenset({"deploy", "rebuild"})
DELETABLE_STATES = frozenset({states.S.ENROLL, states.S.MANAGEABLE, states.S.AVAILABLE,
                              states.S.INSPECTFAIL, states.S.ADOPTFAIL, states.S.CLEANFAIL})


def _retired_rules(node: Node, values: dict[str, Any]) -> dict[str, Any]:
    """Ironic's ``_check_update_retired``: not retired in ``available``, the reason only with
    the flag (and cleared with it). Its texts."""
    if "retired" in values:
        if not values["retired"]:
            values = {**values, "retired_reason": None}
        elif node.provision_state == states.S.AVAILABLE.value:
            raise Conflict(f"Node {node.uuid} can not have 'retired' set in provision state "
                           f"'available', the current state is '{node.provision_state}'")
    if values.get("retired_reason") and not values.get("retired", node.retired):
        raise Invalid("The retired_reason field can only be set when retired is True")
    return values


class ConductorManager(PortOperations, VolumeOperations, AllocationOperations,
                       ConsoleOperations, ClassroomOperations):
    def __init__(self, db: Database, settings: Settings, drivers: Drivers,
                 membership: Membership | None = None, rpc_address: str | None = None) -> None:
        """``rpc_address`` is where other processes reach this conductor (None: in process)."""
        self.db = db
        self.rpc_address = rpc_address
        self.settings = settings
        self.drivers = drivers
        self.membership = membership or Membership(db, settings)
        self.host = settings.conductor.hostname
        self.runner = TaskRunner(db, settings, drivers, self.host)
        self.lifecycle = ConductorLifecycle(db, settings, drivers, self.membership, self.runner,
                                            rpc_address)
        self.task = self.runner.task
        self.locked = self.runner.locked
        self.start_on_locked = self.runner.start_on_locked
        self._init_consoles()

    def start(self) -> None:
        self.lifecycle.start()
        self.reopen_consoles()

    def stop(self) -> None:
        self.consoles.close_all("the conductor is stopping")
        self.lifecycle.stop()

    @property
    def stopping(self) -> threading.Event:
        return self.lifecycle.stopping

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

        self.runner.start(node_uuid, prepare, work, flows.EVENT_TYPES[event])

    def _check_deploy_limit(self, task: Task) -> None:
        deploying = task.session.scalar(
            select(func.count()).select_from(Node).where(
                Node.provision_state.in_([states.S.DEPLOYING.value, states.S.DEPLOYWAIT.value])
            )
        )
        if (deploying or 0) >= self.settings.conductor.max_concurrent_deploys:
            raise TemporaryFailure(
                f"Too many nodes are deploying ({deploying}, the limit is "
                f"{self.settings.conductor.max_concurrent_deploys}); please retry later.")

    # -- the agent in the deploy ramdisk ---------------------------------------------------

    def issue_agent_token(self, node_uuid: str) -> str | None:
        """The node's one-time agent token if none was issued yet, else None (409 if locked)."""
        with self.locked(node_uuid) as task:
            return agent.issue_token(task, self.settings.deploy)

    def heartbeat(self, node_uuid: str, callback_url: str, agent_token: str | None,
                  agent_version: str | None = None) -> None:
        """Check an agent's heartbeat and continue the node's work in a worker; returns at once.

        Refused (nothing recorded) in a state that expects no agent (409), without a token
        (401), with a wrong one (403), or from another callback URL than its first (409). A
        node that is busy skips this heartbeat.
        """
        problem = agent_checks.callback_url_problem(callback_url)
        if problem:
            raise Invalid(problem)
        agent_checks.check_version(agent_version)
        with self.db.session() as session:
            row = session.execute(select(Node.id, Node.provision_state,
                                         Node.driver_internal_info, Node.driver_info)
                                  .where(Node.uuid == node_uuid)).first()
        if row is None:
            raise NodeNotFound(node_uuid)
        fast_track_default = self.settings.deploy.fast_track
        agent.check_heartbeat(node_uuid, row.provision_state, row.driver_internal_info or {},
                              agent_token, callback_url, fast_track.accepts_agent(
                                  row.provision_state, row.driver_info or {},
                                  fast_track_default))
        assert agent_token is not None
        if agent.recorded_recently(row.provision_state, row.driver_internal_info or {},
                                   self.settings.deploy):
            return  # a resting node's agent: no lock taken for every heartbeat
        work = agent.heartbeat_work(callback_url, agent_version, agent_token,
                                    fast_track_default)
        if not self.start_on_locked(row.id, node_uuid, work,
                                    event_type(row.provision_state)):
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
                                            self.settings.discovery.max_enroll_nodes)
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
        prepare, work = power.change(target)
        self.runner.start(node_uuid, prepare, work, "power")

    def change_node_boot_mode(self, node_uuid: str, target: str) -> None:
        self.runner.start(node_uuid, *boot_mode.change_boot_mode(target), "management")

    def change_node_secure_boot(self, node_uuid: str, target: bool) -> None:
        self.runner.start(node_uuid, *boot_mode.change_secure_boot(target), "management")

    def attach_virtual_media(self, node_uuid: str, device_type: str, image_url: str,
                             image_download_source: str = "local") -> None:
        self.runner.start(node_uuid, *vmedia.attach(self.settings, device_type, image_url,
                                                    image_download_source), "management")

    def detach_virtual_media(self, node_uuid: str, device_types: list[str] | None = None
                             ) -> None:
        self.runner.start(node_uuid, *vmedia.detach(self.settings, device_types),
                          "management")

    def get_virtual_media(self, node_uuid: str) -> list[dict[str, Any]]:
        with self.task(self.runner.node_id(node_uuid)) as task:
            return vmedia.listed(task)

    def set_boot_device(self, node_uuid: str, device: str, persistent: bool) -> None:
        with self.locked(node_uuid) as task:
            supported = task.driver.management.get_supported_boot_devices(task)
            if device not in supported:
                raise Invalid(f"Invalid boot device {device}, supported boot devices for node "
                              f"{node_uuid} are: {', '.join(supported)}.")
            boot_mode.check_management(task)
            try:
                task.driver.management.set_boot_device(task, device, persistent)
            except DriverError as exc:
                raise EnclumeError(f"Failed to set the boot device of node {node_uuid}: "
                                   f"{exc}") from exc

    def get_boot_device(self, node_uuid: str) -> dict[str, Any]:
        with self.task(self.runner.node_id(node_uuid)) as task:
            try:
                return task.driver.management.get_boot_device(task)
            except DriverError as exc:
                # A BMC that fails is the server side's problem, as in Ironic (500).
                raise EnclumeError(f"Failed to get the boot device of node {node_uuid}: "
                                   f"{exc}") from exc

    def get_supported_boot_devices(self, node_uuid: str) -> list[str]:
        with self.task(self.runner.node_id(node_uuid)) as task:
            return task.driver.management.get_supported_boot_devices(task)

    def set_target_raid_config(self, node_uuid: str, target_raid_config: dict[str, Any]
                               ) -> None:
        """Store the node's target RAID configuration once its raid interface takes it (an
        empty one unsets it): 404 for a node without raid interface, 400 with the reason."""
        with self.locked(node_uuid) as task:
            raid = task.driver.raid
            if not raid.supported:
                raise NotFound(f"Driver {task.node.driver} does not support raid (disabled or "
                               f"not implemented).")
            if target_raid_config:
                try:
                    raid.validate_raid_config(task, target_raid_config)
                except DriverError as exc:
                    raise Invalid(scrub(str(exc))) from exc
            task.node.target_raid_config = target_raid_config

    def validate(self, node_uuid: str) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        with self.task(self.runner.node_id(node_uuid)) as task:
            for name in INTERFACES:
                interface = task.driver.interfaces[name]
                if not interface.supported:
                    result[name] = {"result": None, "reason": "not supported"}
                    continue
                try:
                    interface.validate(task)
                    result[name] = {"result": True}
                except DriverError as exc:
                    result[name] = {"result": False, "reason": scrub(str(exc))}
        return result

    # -- VIFs (API 1.28): the node's network interface keeps them on its ports --------------

    def vif_list(self, node_uuid: str) -> list[dict[str, Any]]:
        with self.task(self.runner.node_id(node_uuid)) as task:
            return task.driver.network.vif_list(task)

    def vif_attach(self, node_uuid: str, vif_info: dict[str, Any]) -> None:
        """Attach the VIF ``vif_info["id"]`` to a free port, as Ironic: the network interface
        validates first (400 with its reason if it cannot work)."""
        with self.locked(node_uuid) as task:
            try:
                task.driver.network.validate(task)
            except DriverError as exc:
                raise Invalid(scrub(str(exc))) from exc
            task.driver.network.vif_attach(task, vif_info)

    def vif_detach(self, node_uuid: str, vif_id: str) -> None:
        with self.locked(node_uuid) as task:
            task.driver.network.vif_detach(task, vif_id)

    # -- changes to nodes (ports and port groups: port_ops.py) -------------------------

    def update_node(self, node_uuid: str, values: dict[str, Any],
                    expected: dict[str, Any] | None = None) -> None:
        """Write field values the API has already checked, under the node's lock, if the
        node's fields still have the ``expected`` values they were computed from."""
        try:
            with self.locked(node_uuid) as task:
                node = task.node
                check_unchanged(node, expected, f"Node {node.uuid}")
                values = _retired_rules(node, values)
                new_instance = values.get("instance_uuid")
                if new_instance and node.instance_uuid and new_instance != node.instance_uuid:
                    raise Conflict(f"Node {node.uuid} is associated with instance "
                                   f"{node.instance_uuid}; remove it first.")
                allocations.remove_with_instance(task.session, node, values)
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
            task.session.execute(delete(Allocation).where(Allocation.node_id == node.id))
            task.session.delete(node)
        self.consoles.close(node_uuid, "the node was deleted")

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
