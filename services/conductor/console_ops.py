"""The conductor API's console methods (Ironic's ``set_console_mode`` and
``get_console_information``) and the consoles' life with the conductor's and the hash ring's:
enabled consoles of its nodes opened at start and whenever the ring gives it a node (another
conductor joined, left or died), released when the ring gives the node to another conductor,
every console closed at stop and with its node."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from services.common.exceptions import Invalid
from services.common.models import Node
from services.common.secrets import scrub
from services.conductor.consoles import Consoles
from services.conductor.task import Task
from services.drivers.base import DriverError

if TYPE_CHECKING:
    from services.common.config import Settings
    from services.common.db import Database
    from services.common.membership import Membership
    from services.conductor.runner import TaskRunner

LOG = logging.getLogger(__name__)


class ConsoleOperations:
    db: Database
    settings: Settings
    runner: TaskRunner
    membership: Membership
    host: str
    rpc_address: str | None
    consoles: Consoles

    def _init_consoles(self) -> None:
        api = self.settings.api
        self.consoles = Consoles(self.settings, self.rpc_address or api.public_url
                                 or f"http://{api.host}:{api.port}")

    def set_console_mode(self, node_uuid: str, enabled: bool) -> None:
        """Open or close the node's console in a worker (the API answers 202 at once)."""
        with self.runner.task(self.runner.node_id(node_uuid)) as task:
            _check_console(task)
            if task.node.console_enabled == enabled and (
                    self.consoles.is_open(node_uuid) == enabled):
                LOG.info("console of node %s already %s", node_uuid,
                         "enabled" if enabled else "disabled")
                return

        def prepare(task: Task) -> None:
            task.node.last_error = None
            task.commit()

        def work(task: Task) -> None:
            if enabled:
                self._open_console(task)
            else:
                self.consoles.close(task.node.uuid, "console disabled")
                task.node.console_enabled = False

        self.runner.start(node_uuid, prepare, work, "console")

    def _open_console(self, task: Task) -> None:
        try:
            self.consoles.open(task, self._console_lost)
        except (DriverError, OSError) as exc:
            task.node.console_enabled = False
            task.node.last_error = scrub(f"Error enabling the console on node "
                                         f"{task.node.uuid}. Reason: {exc}")
            task.record("console", task.node.last_error, severity="ERROR")
            return
        task.node.console_enabled = True

    def _console_lost(self, node_uuid: str, reason: str) -> None:
        """The stream ended by itself: the node says so, as Ironic's console checks do, unless
        the node moved to another conductor (whose console took the SOL payload over)."""
        self.membership.refresh_now()
        owner = self.membership.owner(self.settings.conductor.group, node_uuid)
        if owner is not None and owner.hostname != self.host:
            LOG.info("console of node %s ended here (%s): conductor %s has the node now",
                     node_uuid, reason, owner.hostname)
            return
        try:
            with self.runner.locked(node_uuid) as task:
                task.node.console_enabled = False
                task.node.last_error = scrub(f"The console of node {node_uuid} was lost: "
                                             f"{reason}")
        except Exception:  # a node deleted or busy: its console is gone anyway
            LOG.warning("console of node %s lost (%s); the node was not updated", node_uuid,
                        reason)

    def get_console_information(self, node_uuid: str) -> dict[str, Any] | None:
        """Ironic's console_info, None when the console is not enabled."""
        with self.runner.task(self.runner.node_id(node_uuid)) as task:
            _check_console(task)
        return self.consoles.info(node_uuid)

    def follow_the_ring(self) -> tuple[int, int]:
        """Ironic's console takeover, run periodically: the consoles of nodes the ring now
        gives another conductor are released (it opens them), those of nodes deleted
        meanwhile (by their new owner) closed, the enabled consoles of nodes the ring gives
        this conductor opened. Returns (released or closed, opened)."""
        here = self.consoles.open_nodes()
        if here:
            owned = self.membership.owned_by(self.host, self.settings.conductor.group)
            with self.db.session() as session:
                existing: dict[str, bool] = {uuid: bool(mine) for uuid, mine in session.execute(
                    select(Node.uuid, owned).where(Node.uuid.in_(here)))}
            for uuid in here - set(existing):
                self.consoles.close(uuid, "the node was deleted")
            for uuid in (uuid for uuid, mine in existing.items() if not mine):
                owner = self.membership.owner(self.settings.conductor.group, uuid)
                where = f"conductor {owner.hostname}" if owner else "another conductor"
                self.consoles.close(uuid, f"the node's console moved to {where}",
                                    handed_over=True)
        return len(here - self.consoles.open_nodes()), self.reopen_consoles()

    def reopen_consoles(self) -> int:
        """Open the enabled consoles of this conductor's nodes that are not open here (at
        start, and when the ring gives this conductor more nodes)."""
        with self.db.session() as session:
            uuids = list(session.scalars(select(Node.uuid).where(
                Node.console_enabled.is_(True),
                self.membership.owned_by(self.host, self.settings.conductor.group))))
        opened = 0
        for uuid in uuids:
            if self.consoles.is_open(uuid):
                continue
            try:
                self.runner.start(uuid, lambda task: None, self._open_console, "console")
                opened += 1
            except Exception as exc:  # locked or gone: the next periodic pass tries again
                LOG.info("console of node %s not reopened: %s", uuid, exc)
        return opened


def _check_console(task: Task) -> None:
    interface = task.driver.console
    if not interface.supported:
        raise Invalid(f"The console interface {task.node.console_interface or 'no-console'} "
                      f"of node {task.node.uuid} does not support consoles.")
    try:
        interface.validate(task)
    except DriverError as exc:
        raise Invalid(scrub(f"Failed to validate the console interface of node "
                            f"{task.node.uuid}: {exc}")) from exc
