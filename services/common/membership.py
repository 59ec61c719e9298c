"""Which conductors are alive, and the hash rings built from them.

A conductor is alive while its heartbeat is younger than ENCLUME_HEARTBEAT_TIMEOUT_S. Every
process (API or conductor) rebuilds its rings from the database at most every
ENCLUME_RING_REFRESH_S, so a membership change is seen everywhere within seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, false, or_, select

from services.common import enabled_hardware
from services.common.config import Settings
from services.common.db import Database
from services.common.enabled_hardware import EnabledHardware
from services.common.models import Conductor, Node, utcnow
from services.common.ring import MAX_HASH, ConductorRing


@dataclass(frozen=True)
class Member:
    hostname: str
    conductor_group: str
    rpc_address: str | None
    hardware_types: tuple[str, ...]


@dataclass(frozen=True)
class _Alive:
    id: int
    member: Member


def alive_conductors(db: Database, timeout_s: float) -> list[Member]:
    return [alive.member for alive in _alive(db, timeout_s)]


def _alive(db: Database, timeout_s: float) -> list[_Alive]:
    with db.session() as session:
        rows = session.scalars(
            select(Conductor).where(
                Conductor.online.is_(True),
                Conductor.heartbeat_at > utcnow() - timedelta(seconds=timeout_s),
            )
        )
        return [_Alive(r.id, Member(r.hostname, r.conductor_group, r.rpc_address,
                                    tuple(r.hardware_types))) for r in rows]


class Membership:
    """The live conductors and one ring per conductor group, refreshed on demand."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._guard = threading.Lock()
        self._loaded_at = float("-inf")
        self._members: dict[str, Member] = {}
        self._rings: dict[str, ConductorRing] = {}
        self._alive_ids: list[int] = []
        self._hardware: tuple[float, EnabledHardware] | None = None  # (of the load at, what)

    def _refresh(self, force: bool = False) -> None:
        with self._guard:
            refresh_s = self.settings.conductor.ring_refresh_s
            if not force and time.monotonic() - self._loaded_at < refresh_s:
                return
            alive = _alive(self.db, self.settings.conductor.heartbeat_timeout_s)
            members = [a.member for a in alive]
            groups: dict[str, list[str]] = {}
            for member in members:
                groups.setdefault(member.conductor_group, []).append(member.hostname)
            old = self._rings
            self._rings = {
                group: old[group] if group in old and old[group].hostnames == tuple(
                    sorted(hosts)) else ConductorRing(hosts)
                for group, hosts in groups.items()
            }
            self._members = {m.hostname: m for m in members}
            self._alive_ids = [a.id for a in alive]
            self._loaded_at = time.monotonic()

    def refresh_now(self) -> None:
        self._refresh(force=True)

    def members(self) -> dict[str, Member]:
        self._refresh()
        return self._members

    def hardware(self) -> EnabledHardware:
        """The hardware types and interfaces the live conductors registered (read once per
        refresh of the members, when first asked: conductors never ask)."""
        self._refresh()
        with self._guard:
            if self._hardware is None or self._hardware[0] != self._loaded_at:
                with self.db.session() as session:
                    found = enabled_hardware.registered(session, self._alive_ids)
                self._hardware = (self._loaded_at, found)
            return self._hardware[1]

    def ring(self, group: str) -> ConductorRing:
        self._refresh()
        return self._rings.get(group) or ConductorRing([])

    def owner(self, group: str, node_uuid: str) -> Member | None:
        self._refresh()
        ring = self._rings.get(group)
        hostname = ring.owner(node_uuid) if ring else None
        return self._members.get(hostname) if hostname else None

    def owned_by(self, hostname: str, group: str) -> ColumnElement[bool]:
        """SQL condition selecting the nodes of ``group`` that the ring gives ``hostname``."""
        arcs = self.ring(group).arcs(hostname)
        if not arcs:
            return false()
        return and_(Node.conductor_group == group, or_(*[
            # The last arc ends past the largest BIGINT: no upper bound to write for it.
            Node.ring_hash >= low if high > MAX_HASH else and_(Node.ring_hash >= low,
                                                                 Node.ring_hash < high)
            for low, high in arcs]))
