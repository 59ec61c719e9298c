"""What the boot service should answer: the desired boot of every node, read from the database.

The conductor's boot interfaces keep a node's desired boot in ``driver_internal_info["boot"]``
(its schema, ``BootEntry`` and ``boot_entry``, is shared: ``services/common/bootconfig/entry.py``);
a node without it gets no boot answers. Every PXE-enabled port of a node with a desired boot is
a ``BootEntry``.

``BootWatcher`` follows the database: every ``ENCLUME_BOOT_POLL_INTERVAL_S`` it reads a cheap
fingerprint of the nodes and ports tables (row counts, highest ids, newest update times) and
loads the entries only when the fingerprint moved, or every ``ENCLUME_BOOT_RESYNC_INTERVAL_S``
regardless (an update stamped by a conductor whose clock is behind would not move the newest
update time).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, func, select

from services.common.bootconfig.entry import BOOT_KEY, BootEntry, DesiredBoot, boot_entry
from services.common.db import Database
from services.common.macs import parse_mac
from services.common.models import Node, Port

LOG = logging.getLogger(__name__)

def _booting_ports() -> Select[Any]:
    boot = Node.driver_internal_info[BOOT_KEY].as_string()
    return (select(Port.address, Node.uuid, Node.driver_internal_info)
            .join(Node, Port.node_id == Node.id)
            .where(Port.pxe_enabled.is_(True), boot.is_not(None)))


def load_desired_boot(db: Database, discovery: bool) -> DesiredBoot:
    """The desired boot of every PXE-enabled port, as the database says now."""
    entries: dict[str, BootEntry] = {}
    quiet: set[str] = set()
    with db.session() as session:
        for address, node_uuid, info in session.execute(_booting_ports()):
            mac = parse_mac(address)
            if mac is None:
                LOG.warning("node %s: port address %r is not a MAC address, ignored",
                            node_uuid, address)
                continue
            entry = boot_entry(mac, node_uuid, (info or {}).get(BOOT_KEY))
            if entry is not None:
                entries[mac] = entry
        if discovery:
            for (address,) in session.execute(select(Port.address)):
                mac = parse_mac(address)
                if mac is not None and mac not in entries:
                    quiet.add(mac)
    return DesiredBoot(entries=entries, quiet_macs=frozenset(quiet), discovery=discovery)


def fingerprint(db: Database) -> tuple[Any, ...]:
    """Changes whenever a node or port is added, removed or updated (with a sane clock).

    Each part is answered from an index (the primary keys, ``ix_*_updated_at``).
    """
    with db.session() as session:
        return tuple(session.execute(select(
            select(func.count()).select_from(Node).scalar_subquery(),
            select(func.max(Node.id)).scalar_subquery(),
            select(func.max(Node.updated_at)).scalar_subquery(),
            select(func.count()).select_from(Port).scalar_subquery(),
            select(func.max(Port.id)).scalar_subquery(),
            select(func.max(Port.updated_at)).scalar_subquery(),
        )).one())


class BootWatcher:
    """Calls ``on_change`` with the desired boot at start and after every change of it.

    ``on_change`` runs in the watcher's thread; an exception in it is logged and the same
    desired boot is offered again at the next poll.
    """

    def __init__(self, db: Database, *, discovery: bool, poll_interval_s: float,
                 resync_interval_s: float, on_change: Callable[[DesiredBoot], None]) -> None:
        self._db = db
        self._discovery = discovery
        self._poll_interval_s = poll_interval_s
        self._resync_interval_s = resync_interval_s
        self._on_change = on_change
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._fingerprint: tuple[Any, ...] | None = None
        self._applied: DesiredBoot | None = None
        self._loaded_at = 0.0
        self.current: DesiredBoot | None = None

    def start(self) -> None:
        """Applies the current desired boot once (errors propagate), then follows changes."""
        self.poll()
        self._thread = threading.Thread(target=self._run, name="boot-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def poll(self) -> bool:
        """One look at the database; True if ``on_change`` was called."""
        mark = fingerprint(self._db)
        resync_due = time.monotonic() - self._loaded_at >= self._resync_interval_s
        if mark == self._fingerprint and not resync_due and self._applied is not None:
            return False
        desired = load_desired_boot(self._db, self._discovery)
        self._loaded_at = time.monotonic()
        self.current = desired
        if desired == self._applied:
            self._fingerprint = mark
            return False
        self._on_change(desired)
        self._applied = desired
        self._fingerprint = mark
        return True

    def _run(self) -> None:
        while not self._stopping.wait(self._poll_interval_s):
            try:
                self.poll()
            except Exception:
                LOG.exception("following the desired boot failed; trying again")
