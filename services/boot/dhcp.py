"""The DHCP side of a boot service: dnsmasq, the DHCP filter, and the watcher that feeds both
with the desired boot from the database."""

from __future__ import annotations

import logging
from typing import Any

from services.boot.desired import BootWatcher
from services.boot.dhcp_filter import DhcpFilter
from services.boot.dnsmasq import Dnsmasq
from services.boot.dnsmasq_config import DhcpNetwork, network_from_settings
from services.common.bootconfig.entry import DesiredBoot
from services.common.config import Settings
from services.common.db import Database

LOG = logging.getLogger(__name__)


class DhcpService:
    """Start: dnsmasq's files, the filter, the first desired boot, then dnsmasq itself."""

    def __init__(self, settings: Settings, db: Database,
                 network: DhcpNetwork | None = None) -> None:
        self.network = network or network_from_settings(settings)
        self.dnsmasq = Dnsmasq(self.network, settings.dhcp.dnsmasq_binary,
                               reserve_addresses=settings.dhcp.filter)
        self.filter = DhcpFilter(self.network.interface) if settings.dhcp.filter else None
        self.watcher = BootWatcher(db, discovery=settings.discovery.enabled,
                                   poll_interval_s=settings.boot.poll_interval_s,
                                   resync_interval_s=settings.boot.resync_interval_s,
                                   on_change=self._apply)
        self._answered: frozenset[str] = frozenset()

    def start(self) -> None:
        self.dnsmasq.prepare()
        if self.filter is not None:
            self.filter.start()
        try:
            self.watcher.start()
            self.dnsmasq.start()
        except BaseException:
            self.watcher.stop()
            if self.filter is not None:
                self.filter.stop()
            raise
        LOG.info("DHCP (%s mode) on %s (%s): PXE ROMs get iPXE from %s, iPXE gets %s",
                 self.network.mode, self.network.interface, self.network.network,
                 self.network.next_server, self.network.script_url)

    def stop(self) -> None:
        self.watcher.stop()
        self.dnsmasq.stop()
        if self.filter is not None:
            self.filter.stop()

    def _apply(self, desired: DesiredBoot) -> None:
        answered = frozenset(desired.entries)
        added, removed = answered - self._answered, self._answered - answered
        # The filter first: a MAC that stops being answered is cut off at once.
        if self.filter is not None:
            self.filter.apply(desired)
        self.dnsmasq.apply(desired)
        self._answered = answered
        if added or removed:
            LOG.info("boot answers: %d MAC(s) (+%s -%s)", len(answered),
                     ",".join(sorted(added)) or "0", ",".join(sorted(removed)) or "0")

    def health(self) -> dict[str, Any]:
        return {"dnsmasq": "running" if self.dnsmasq.process.running else "down",
                "dnsmasq_restarts": self.dnsmasq.process.restarts,
                "answered_macs": len(self._answered),
                "filter": "off" if self.filter is None else "on"}
