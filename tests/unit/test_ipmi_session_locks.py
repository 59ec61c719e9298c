"""pyghmi's two session-table locks, as services.drivers.ipmi leaves them: taken in both orders
(as pyghmi's event loop and its send path do) by two threads at once, neither thread waits for
ever. With two separate locks, this deadlocked every IPMI call of a conductor once a BMC
stopped answering (the verifies of test_power_drivers ended in enroll)."""

from __future__ import annotations

import contextlib
import threading

from pyghmi.ipmi.private import session as pyghmi_session

import services.drivers.ipmi  # noqa: F401  (the module under test: it fixes pyghmi's locks)


def test_pyghmi_session_locks_taken_in_both_orders_do_not_deadlock() -> None:
    waiting, keepalive = pyghmi_session.WAITING_SESSIONS, pyghmi_session.KEEPALIVE_SESSIONS
    both_hold_their_first = threading.Barrier(2, timeout=1)
    got: dict[str, bool] = {}

    def take(name: str, first: threading.RLock, second: threading.RLock) -> None:
        assert first.acquire(timeout=10)
        try:
            # Broken when the other thread waits for our first lock: one lock for both tables.
            with contextlib.suppress(threading.BrokenBarrierError):
                both_hold_their_first.wait()
            got[name] = second.acquire(timeout=2)
            if got[name]:
                second.release()
        finally:
            first.release()

    # wait_for_rsp -> _timedout -> _mark_broken, and send_payload -> _xmit_packet
    threads = [threading.Thread(target=take, args=("loop", waiting, keepalive)),
               threading.Thread(target=take, args=("send", keepalive, waiting))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert got == {"loop": True, "send": True}
