"""Many emulated BMCs in one process: ``BmcFleet`` binds one UDP port per BMC and serves them
all from one thread that waits on every socket with ``selectors`` (epoll), so 500 BMCs cost 500
sockets and one thread; with faults switchable per BMC while it runs (tests/support/ipmi_bmc.py
says what clients see of them).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from tests.support.ipmi_machine import Machine, MemoryMachine
from tests.support.ipmi_protocol import EmulatedBmc

LOG = logging.getLogger(__name__)

SESSION_SWEEP_INTERVAL_S = 10.0
MAX_DATAGRAM = 4096
# Datagrams held back by the "slow" fault, all BMCs together; beyond this they are dropped.
MAX_DELAYED_DATAGRAMS = 10_000


@dataclass
class _Faults:
    password: str
    down: bool = False
    delay_s: float = 0.0


class BmcFleet:
    """BMCs on 127.0.0.1, one UDP port each, served by one thread. Use as a context manager."""

    def __init__(self, username: str, password: str, *, host: str = "127.0.0.1",
                 kg: bytes | None = None,
                 machine_factory: Callable[[], Machine] = MemoryMachine) -> None:
        self.username = username
        self.host = host
        self._password = password
        self._kg = kg
        self._machine_factory = machine_factory
        self._bmcs: dict[int, EmulatedBmc] = {}
        self._faults: dict[int, _Faults] = {}
        self._lock = threading.RLock()
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, None)
        self._delayed: list[tuple[float, int, int, bytes, Any]] = []
        self._order = itertools.count()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._closed = False

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, count: int, base_port: int = 0) -> list[tuple[int, Machine]]:
        """Add ``count`` BMCs with fresh machines; ports from ``base_port`` (0: any free)."""
        started = []
        for index in range(count):
            machine = self._machine_factory()
            port = self.add(machine, base_port + index if base_port else 0)
            started.append((port, machine))
        return started

    def add(self, machine: Machine, port: int = 0) -> int:
        """Serve one more BMC for ``machine``; returns its UDP port."""
        if self._closed:
            raise RuntimeError("this fleet was stopped")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, port))
        except OSError:
            sock.close()
            raise
        bmc = EmulatedBmc(machine, sock, {self.username: self._password}, kg=self._kg)
        with self._lock:
            self._bmcs[bmc.port] = bmc
            self._faults[bmc.port] = _Faults(password=self._password)
            self._selector.register(sock, selectors.EVENT_READ, bmc)
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="bmc-fleet", daemon=True)
            self._thread.start()
        return bmc.port

    def stop(self) -> None:
        """Stop the loop and close every socket. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            for bmc in self._bmcs.values():
                self._selector.unregister(bmc.serversocket)
                bmc.serversocket.close()
            self._bmcs.clear()
            self._delayed.clear()
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def __enter__(self) -> BmcFleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- inspection and faults -------------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        return list(self._bmcs)

    def machine(self, port: int) -> Machine:
        return self._bmc(port).machine

    def password(self, port: int) -> str:
        return self._faults[self._bmc(port).port].password

    def set_down(self, port: int) -> None:
        """The BMC answers nothing (as if unplugged) until ``restore``."""
        with self._lock:
            self._faults[self._bmc(port).port].down = True

    def set_slow(self, port: int, seconds: float) -> None:
        """Every datagram to the BMC is handled ``seconds`` after it arrived."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        with self._lock:
            self._faults[self._bmc(port).port].delay_s = seconds

    def set_password(self, port: int, password: str) -> None:
        """Change the BMC's password; sessions opened with the old one are dropped."""
        with self._lock:
            bmc = self._bmc(port)
            bmc.authdata[self.username] = password
            self._faults[port].password = password
            bmc.sessions.clear()

    def forget_sessions(self, port: int) -> None:
        """The BMC drops its sessions, as at its inactivity timeout: their traffic goes
        unanswered, a client must log in again."""
        with self._lock:
            self._bmc(port).sessions.clear()

    def restore(self, port: int) -> None:
        """Back to normal: answering, no delay, the fleet's password."""
        with self._lock:
            faults = self._faults[self._bmc(port).port]
            faults.down, faults.delay_s = False, 0.0
            if faults.password != self._password:
                self.set_password(port, self._password)

    def _bmc(self, port: int) -> EmulatedBmc:
        try:
            return self._bmcs[port]
        except KeyError:
            raise KeyError(f"no BMC on port {port}") from None

    # --- the loop --------------------------------------------------------------------------

    def _wake(self) -> None:
        with suppress(OSError):
            self._wake_writer.send(b"\0")

    def _serve(self) -> None:
        next_sweep = time.monotonic() + SESSION_SWEEP_INTERVAL_S
        while not self._stopping:
            now = time.monotonic()
            timeout = next_sweep - now
            if self._delayed:
                timeout = min(timeout, self._delayed[0][0] - now)
            for key, _ in self._selector.select(max(timeout, 0.0)):
                if key.data is None:
                    self._drain_wake()
                else:
                    self._receive_all(key.data)
            self._run_due(time.monotonic())
            if time.monotonic() >= next_sweep:
                with self._lock:
                    for bmc in self._bmcs.values():
                        bmc.forget_idle_sessions(time.monotonic())
                next_sweep = time.monotonic() + SESSION_SWEEP_INTERVAL_S

    def _drain_wake(self) -> None:
        try:
            while self._wake_reader.recv(512):
                pass
        except BlockingIOError:
            pass

    def _receive_all(self, bmc: EmulatedBmc) -> None:
        while True:
            try:
                data, address = bmc.serversocket.recvfrom(MAX_DATAGRAM, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # closed during stop, or an ICMP error queued on the socket
            with self._lock:
                faults = self._faults.get(bmc.port)
                if faults is None or faults.down:
                    continue
                if faults.delay_s > 0:
                    if len(self._delayed) >= MAX_DELAYED_DATAGRAMS:
                        continue
                    due = time.monotonic() + faults.delay_s
                    heapq.heappush(self._delayed, (due, next(self._order), bmc.port, data, address))
                    continue
                self._handle(bmc, data, address)

    def _run_due(self, now: float) -> None:
        with self._lock:
            while self._delayed and self._delayed[0][0] <= now:
                _, _, port, data, address = heapq.heappop(self._delayed)
                bmc, faults = self._bmcs.get(port), self._faults.get(port)
                if bmc is not None and faults is not None and not faults.down:
                    self._handle(bmc, data, address)

    @staticmethod
    def _handle(bmc: EmulatedBmc, data: bytes, address: Any) -> None:
        try:
            bmc.handle_datagram(data, address)
        except Exception:
            # A malformed or unexpected datagram must never stop the other BMCs.
            LOG.exception("BMC on port %d: datagram from %s not handled", bmc.port, address)


@contextmanager
def running_fleet(count: int, username: str, password: str,
                  **options: Any) -> Iterator[tuple[BmcFleet, list[tuple[int, Machine]]]]:
    """A started fleet of ``count`` BMCs, stopped on exit."""
    fleet = BmcFleet(username, password, **options)
    try:
        yield fleet, fleet.start(count)
    finally:
        fleet.stop()

