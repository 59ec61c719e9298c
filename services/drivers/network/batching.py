"""One lock per switch, and batching: changes asked for within a short window share a session.

The first caller of an idle switch waits `window_s` for others to join, takes the switch's lock,
and applies everything pending in one session; the others wait for that outcome. Callers
arriving meanwhile form the next batch. If a batch of several requests fails, each request is
tried again alone, so that one bad port fails only the node it belongs to.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from services.drivers.network.switches.base import PortVlan, SwitchDriver

LOG = logging.getLogger(__name__)


@dataclass
class _Request:
    changes: tuple[PortVlan, ...]
    outcome: Future[None] = field(default_factory=Future)


def merge(requests: Sequence[Sequence[PortVlan]]) -> list[PortVlan]:
    """The changes of several requests as one list, one change per port: the latest wins,
    at the place of the port's first change."""
    latest: dict[str, PortVlan] = {}
    for changes in requests:
        for change in changes:
            latest[change.port_id] = change
    return list(latest.values())


class SwitchBatcher:
    def __init__(self, driver: SwitchDriver, window_s: float) -> None:
        self.driver = driver
        self.window_s = window_s
        self._pending: list[_Request] = []
        self._pending_lock = threading.Lock()
        self._switch_lock = threading.Lock()  # one session with the switch at a time
        self.sessions = 0  # sessions opened, for tests and diagnostics

    def apply(self, changes: Sequence[PortVlan]) -> None:
        """Apply `changes` (with whatever else is pending); raises what the switch raised."""
        if not changes:
            return
        request = _Request(tuple(changes))
        with self._pending_lock:
            self._pending.append(request)
            leads = len(self._pending) == 1
        if leads:
            if self.window_s > 0:
                time.sleep(self.window_s)
            with self._switch_lock:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                try:
                    self._run(batch)
                finally:  # never leave a waiting caller without an outcome
                    for waiting in batch:
                        if not waiting.outcome.done():
                            waiting.outcome.set_exception(
                                RuntimeError(f"switch {self.driver.name}: batch interrupted"))
        request.outcome.result()

    def _run(self, batch: list[_Request]) -> None:
        try:
            self._session([r.changes for r in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].outcome.set_exception(exc)
                return
            LOG.warning("switch %s: a batch of %d requests failed (%s); trying each alone",
                        self.driver.name, len(batch), exc)
            for request in batch:
                try:
                    self._session([request.changes])
                except Exception as alone:
                    request.outcome.set_exception(alone)
                else:
                    request.outcome.set_result(None)
            return
        for request in batch:
            request.outcome.set_result(None)

    def _session(self, requests: Sequence[Sequence[PortVlan]]) -> None:
        self.sessions += 1
        self.driver.set_access_vlans(merge(requests))
