"""One lock per switch and batching: concurrent requests for one switch share one session,
sessions never overlap, and one bad port fails only its own request."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.drivers.network.batching import SwitchBatcher, merge
from services.drivers.network.switches.base import PortVlan, SwitchError

WINDOW_S = 0.2


class InMemorySwitch:
    """A switch driver keeping access VLANs in a dict; a session takes `session_s`."""

    def __init__(self, session_s: float = 0.05, broken_ports: Sequence[str] = ()) -> None:
        self.name = "memory"
        self.session_s = session_s
        self.broken_ports = set(broken_ports)
        self.sessions: list[list[PortVlan]] = []
        self.port_vlans: dict[str, int] = {}
        self._inside = 0
        self.overlapped = False
        self._lock = threading.Lock()

    def check_port_id(self, port_id: str) -> str | None:
        return None

    def set_access_vlans(self, changes: Sequence[PortVlan]) -> None:
        with self._lock:
            self._inside += 1
            self.overlapped |= self._inside > 1
            self.sessions.append(list(changes))
        try:
            time.sleep(self.session_s)
            bad = [c.port_id for c in changes if c.port_id in self.broken_ports]
            if bad:
                raise SwitchError(f"switch memory refused {bad[0]}")
            for change in changes:
                self.port_vlans[change.port_id] = change.vlan
        finally:
            with self._lock:
                self._inside -= 1


def apply_together(batcher: SwitchBatcher, requests: list[list[PortVlan]]
                   ) -> list[BaseException | None]:
    """Each request from its own thread, all at once; each one's exception or None."""
    start = threading.Barrier(len(requests))

    def one(changes: list[PortVlan]) -> BaseException | None:
        start.wait()
        try:
            batcher.apply(changes)
        except Exception as exc:
            return exc
        return None

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


def test_requests_within_the_window_share_one_session() -> None:
    switch = InMemorySwitch()
    batcher = SwitchBatcher(switch, WINDOW_S)
    requests = [[PortVlan(f"p{i}", 100 + i)] for i in range(8)]

    assert apply_together(batcher, requests) == [None] * 8
    assert len(switch.sessions) == 1
    assert sorted(switch.sessions[0], key=lambda c: c.port_id) == [r[0] for r in requests]
    assert switch.port_vlans == {f"p{i}": 100 + i for i in range(8)}


def test_a_request_waits_for_its_own_outcome_and_later_requests_get_new_sessions() -> None:
    switch = InMemorySwitch()
    batcher = SwitchBatcher(switch, 0.0)
    batcher.apply([PortVlan("p1", 100)])
    assert switch.port_vlans == {"p1": 100}  # applied when apply() returns
    batcher.apply([PortVlan("p1", 200)])
    assert switch.sessions == [[PortVlan("p1", 100)], [PortVlan("p1", 200)]]


def test_sessions_with_one_switch_never_overlap_and_arrivals_during_a_session_batch_next(
        ) -> None:
    switch = InMemorySwitch(session_s=0.3)
    batcher = SwitchBatcher(switch, 0.05)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(batcher.apply, [PortVlan("p0", 10)])
        time.sleep(0.15)  # the first session is running now
        later = [pool.submit(batcher.apply, [PortVlan(f"p{i}", 10 + i)]) for i in range(1, 6)]
        for future in [first, *later]:
            future.result(timeout=10)
    assert not switch.overlapped
    assert [len(s) for s in switch.sessions] == [1, 5]


def test_one_bad_port_fails_only_the_request_it_belongs_to() -> None:
    switch = InMemorySwitch(broken_ports=["bad"])
    batcher = SwitchBatcher(switch, WINDOW_S)
    outcomes = apply_together(batcher, [[PortVlan("a", 100)], [PortVlan("bad", 100)],
                                        [PortVlan("c", 200), PortVlan("d", 200)]])

    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], SwitchError) and "refused bad" in str(outcomes[1])
    assert switch.port_vlans == {"a": 100, "c": 200, "d": 200}
    # the failed batch, then each request alone
    assert len(switch.sessions) == 4 and len(switch.sessions[0]) == 4


def test_a_lone_failing_request_is_not_tried_twice() -> None:
    switch = InMemorySwitch(broken_ports=["bad"])
    with pytest.raises(SwitchError):
        SwitchBatcher(switch, 0.0).apply([PortVlan("bad", 5)])
    assert len(switch.sessions) == 1


def test_merging_keeps_one_change_per_port_the_latest_one() -> None:
    merged = merge([[PortVlan("a", 1), PortVlan("b", 1)], [PortVlan("a", 2)],
                    [PortVlan("c", 3)]])
    assert merged == [PortVlan("a", 2), PortVlan("b", 1), PortVlan("c", 3)]


def test_nothing_to_change_opens_no_session() -> None:
    switch = InMemorySwitch()
    SwitchBatcher(switch, WINDOW_S).apply([])
    assert switch.sessions == []
