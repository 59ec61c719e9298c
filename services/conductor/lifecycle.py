"""A conductor's life: it registers (hostname, group, RPC address, hardware types), clears
the locks left under its name by an earlier life, heartbeats and renews the leases of the locks
it holds until it stops, then says it is offline."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select

from services.common import enabled_hardware
from services.common.config import Settings
from services.common.db import Database
from services.common.membership import Membership
from services.common.models import Conductor, utcnow
from services.conductor.runner import TaskRunner
from services.drivers.registry import Drivers

LOG = logging.getLogger(__name__)


class ConductorLifecycle:
    def __init__(self, db: Database, settings: Settings, drivers: Drivers,
                 membership: Membership, runner: TaskRunner, rpc_address: str | None) -> None:
        self.db = db
        self.settings = settings
        self.drivers = drivers
        self.membership = membership
        self.runner = runner
        self.rpc_address = rpc_address
        self.host = settings.conductor.hostname
        self.stopping = threading.Event()
        self._keeper: threading.Thread | None = None

    def start(self) -> None:
        self._register()
        self.runner.release_all()
        self.membership.refresh_now()
        self._keeper = threading.Thread(target=self._keep_alive, name="conductor-keeper",
                                        daemon=True)
        self._keeper.start()

    def stop(self) -> None:
        self.stopping.set()
        self.runner.shutdown()
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
            conductor.conductor_group = self.settings.conductor.group
            conductor.hardware_types = sorted(self.drivers.hardware_types)
            conductor.rpc_address = self.rpc_address
            conductor.online = True
            conductor.heartbeat_at = utcnow()
            session.flush()
            enabled_hardware.register(session, conductor.id, self.drivers.hardware_types.values())

    def _keep_alive(self) -> None:
        """Heartbeat, and renew the leases of the locks this conductor holds."""
        conductor = self.settings.conductor
        period = min(conductor.heartbeat_interval_s, conductor.reservation_lease_s / 3)
        while not self.stopping.wait(period):
            try:
                self.runner.renew_held()
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
