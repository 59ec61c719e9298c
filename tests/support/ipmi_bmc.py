"""IPMI 2.0 (RMCP+ "lanplus") BMC emulator: many BMCs in one process, one selector loop.

Each BMC is a ``pyghmi.ipmi.bmc.Bmc`` subclass bound to its own UDP port and driving a
``Machine``: ``MemoryMachine`` here, a QEMU-backed one in the lab. All BMCs of a ``BmcFleet`` share
one thread that waits on every socket with ``selectors`` (epoll), so 500 BMCs cost 500 sockets and
one thread.

Why not pyghmi's own server loop: ``IpmiServer.__init__`` registers its socket with pyghmi's
process-wide IO thread, whose packets are then handled by whichever thread calls
``Session.wait_for_rsp`` -- including the threads of a pyghmi *client* in the same process (the
driver under test). The fleet owns its sockets and its loop instead, and keeps pyghmi's global
session table free of server sessions.

Faults, switchable per BMC while running: ``set_down`` (nothing is answered), ``set_slow``
(every datagram is handled N seconds after it arrived), ``set_password`` (clients with the old
password fail authentication; established sessions are dropped), ``restore``.

Workarounds for pyghmi 1.6.19 (LAB-NOTES): the server answers any cipher-suite proposal with suite
3 and "OK", which crashes pyghmi's client (it proposes SHA-256 first); this emulator refuses
everything but suite 3 with RMCP+ status 0x11 so the client falls back. Unknown user names get
RAKP2 status 0x0D ("unauthorized name") instead of silence. Sessions are kept by client address
*and* the session id this BMC gave, as a real BMC: a client whose open session request was
answered late opens another one (pyghmi does, with a new id) and may then go on with the first;
its RAKP 1 names the first, and answering it with the newest session's ids made pyghmi read the
RAKP 2 as "Incorrect password provided" (seen once in a loaded CI run).

Semantics of ``MemoryMachine`` (chosen to match real BMCs): reset and power cycle of a machine that
is off are refused with completion code 0xD5 ("not supported in present state"); power on/off of a
machine already in that state do nothing; a one-time boot override is consumed by the next boot
(power on, reset or cycle), a persistent one stays; soft power off lands after
``soft_off_delay_s`` (``None``: no OS listens to ACPI, the machine stays on).

Measured here (2 cores, shared): 500 BMCs start in ~20 ms and add ~1 MiB to the process (the
``python -m`` process with 500 BMCs: ~36 MiB RSS, 2 threads); one ``ipmitool`` invocation
(session setup, command, close) ~27 ms; a pyghmi ``get_power`` on an open session ~0.5 ms; 500
pyghmi logins + power status from 8 threads ~2 s. Seen from clients: ``down`` -> ipmitool gives
up after -N x (-R + 1) s (20 s with its defaults), a new pyghmi ``Command`` raises after ~4.5 s,
an open pyghmi session only after ~28 s ("Session no longer connected", and that ``Command``
stays broken). ``slow 0.5`` -> ipmitool ~5.5 s (about 11 exchanges), pyghmi login ~3 s and one
command ~1 s (it retransmits). Wrong password -> ipmitool "RAKP 2 HMAC is invalid" (with -v) at
once, pyghmi "Incorrect password provided" at once (an open pyghmi session whose BMC changed its
password fails after ~10 s: "Session no longer connected"); unknown user -> pyghmi "Unauthorized
name in RAKP2". The pyghmi *client* sometimes stalls 0.5-1 s on one command (its IO thread;
ipmitool against the same fleet never does).

Run as a process (benchmarks, the lab)::

    python -m tests.support.ipmi_bmc --count 500 --base-port 0 --user admin \\
        --password-file pw.txt

prints one JSON line ``{"event": "ready", "host": ..., "ports": [...], ...}`` and serves until
SIGTERM or SIGINT. With ``--control-stdin`` it also reads commands, one per line, and answers each
with one JSON line: ``down PORT``, ``slow PORT SECONDS``, ``password PORT NEW-PASSWORD``,
``restore PORT``, ``power PORT`` (the machine's power state), ``boot PORT`` (its boot override);
end of input stops it (so the fleet also ends when the process that started it goes away).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import logging
import resource
import selectors
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

from pyghmi.ipmi import bmc as pyghmi_bmc
from pyghmi.ipmi.private import constants as ipmi_constants
from pyghmi.ipmi.private import serversession
from pyghmi.ipmi.private import session as ipmi_session

LOG = logging.getLogger(__name__)

POWER_ON = "on"
POWER_OFF = "off"

# IPMI completion codes (IPMI 2.0 table 5-2) and RMCP+ status codes (table 13-15).
CC_OK = 0x00
CC_PARAMETER_NOT_SUPPORTED = 0x80
CC_INVALID_DATA = 0xCC
CC_NOT_IN_PRESENT_STATE = 0xD5
RMCP_UNAUTHORIZED_NAME = 0x0D
RMCP_NO_CIPHER_SUITE_MATCH = 0x11

# Boot flags parameter (Get/Set System Boot Options, parameter 5), IPMI 2.0 table 28-14.
BOOT_FLAGS_PARAMETER = 5
BOOT_FLAG_VALID = 0x80
BOOT_FLAG_PERSISTENT = 0x40
BOOT_FLAG_EFI = 0x20
# Parameters a client writes around the boot flags (set in progress, valid-bit clearing, boot
# info acknowledge): accepted and ignored, as most BMCs do.
BOOT_PARAMETERS_ACCEPTED = (0, 3, 4)
# Boot device selector (bits 5:2 of the second data byte) by Ironic's device names.
BOOT_DEVICE_CODES = {"pxe": 1, "disk": 2, "safe": 3, "diag": 4, "cdrom": 5, "bios": 6,
                     "floppy": 15}
BOOT_DEVICES_BY_CODE = {code: name for name, code in BOOT_DEVICE_CODES.items()}

# RMCP+ algorithms of cipher suite 3, the only one pyghmi's server code implements.
AUTH_RAKP_HMAC_SHA1 = 1
INTEGRITY_HMAC_SHA1_96 = 1
CONFIDENTIALITY_AES_CBC_128 = 1

# A session unused this long is forgotten (pyghmi clients send a keepalive every ~25 s).
SESSION_IDLE_TIMEOUT_S = 60.0
SESSION_SWEEP_INTERVAL_S = 10.0
MAX_DATAGRAM = 4096
# Datagrams held back by the "slow" fault, all BMCs together; beyond this they are dropped.
MAX_DELAYED_DATAGRAMS = 10_000


class MachineStateError(Exception):
    """The machine cannot do this in its present state (IPMI completion code 0xD5)."""


@dataclass(frozen=True)
class BootSetting:
    """Boot override: ``device`` None means none (the firmware's own boot order)."""

    device: str | None = None
    persistent: bool = False
    uefi: bool = False


class Machine(Protocol):
    """What a BMC drives. Called on the fleet's one loop thread: every method must return fast."""

    def power_state(self) -> str:
        """``"on"`` or ``"off"``."""

    def power_on(self) -> None: ...
    def power_off(self) -> None: ...
    def power_reset(self) -> None: ...
    def power_cycle(self) -> None: ...
    def soft_shutdown(self) -> None: ...
    def boot_setting(self) -> BootSetting: ...
    def set_boot_setting(self, setting: BootSetting) -> None: ...


class MemoryMachine:
    """A machine that exists only in memory. ``actions`` and ``boots`` record what happened."""

    def __init__(self, power: str = POWER_OFF, soft_off_delay_s: float | None = 0.0) -> None:
        if power not in (POWER_ON, POWER_OFF):
            raise ValueError(f"power must be {POWER_ON!r} or {POWER_OFF!r}, not {power!r}")
        self._lock = threading.Lock()
        self._power = power
        self._soft_off_delay_s = soft_off_delay_s
        self._soft_off_at: float | None = None
        self._boot = BootSetting()
        self.actions: list[str] = []
        # The override in force at each boot (power on from off, reset, cycle), in order.
        self.boots: list[BootSetting] = []

    def _settle(self) -> None:
        if self._soft_off_at is not None and time.monotonic() >= self._soft_off_at:
            self._power = POWER_OFF
            self._soft_off_at = None

    def _boot_now(self) -> None:
        self.boots.append(self._boot)
        if not self._boot.persistent:
            self._boot = BootSetting()

    def power_state(self) -> str:
        with self._lock:
            self._settle()
            return self._power

    def power_on(self) -> None:
        with self._lock:
            self._settle()
            self.actions.append("power_on")
            if self._power == POWER_OFF:
                self._power = POWER_ON
                self._boot_now()

    def power_off(self) -> None:
        with self._lock:
            self.actions.append("power_off")
            self._power = POWER_OFF
            self._soft_off_at = None

    def power_reset(self) -> None:
        with self._lock:
            self._settle()
            if self._power == POWER_OFF:
                raise MachineStateError("reset of a machine that is off")
            self.actions.append("power_reset")
            self._soft_off_at = None
            self._boot_now()

    def power_cycle(self) -> None:
        with self._lock:
            self._settle()
            if self._power == POWER_OFF:
                raise MachineStateError("power cycle of a machine that is off")
            self.actions.append("power_cycle")
            self._soft_off_at = None
            self._boot_now()

    def soft_shutdown(self) -> None:
        with self._lock:
            self._settle()
            self.actions.append("soft_shutdown")
            if self._power == POWER_ON and self._soft_off_delay_s is not None:
                deadline = time.monotonic() + self._soft_off_delay_s
                if self._soft_off_at is None or deadline < self._soft_off_at:
                    self._soft_off_at = deadline
                self._settle()

    def boot_setting(self) -> BootSetting:
        with self._lock:
            return self._boot

    def set_boot_setting(self, setting: BootSetting) -> None:
        if setting.device is not None and setting.device not in BOOT_DEVICE_CODES:
            raise ValueError(f"unknown boot device {setting.device!r}")
        with self._lock:
            self.actions.append("set_boot_setting")
            self._boot = setting


def _send_rmcp_payload(session: serversession.ServerSession, payload: bytes,
                       payload_type: str) -> None:
    session.send_payload(payload, ipmi_constants.payload_types[payload_type], retry=False)


class _EmulatedSession(serversession.ServerSession):
    """pyghmi's server session, refusing cipher suites it cannot do and naming unknown users."""

    refused = False
    k1: bytes | None = None  # the integrity key, known once RAKP3 checked out
    Rc: bytes | None = None  # this BMC's random number, known once RAKP1 was answered

    def create_open_session_response(self, request: bytearray) -> bytearray:
        self.clientsessionid = request[4:8]
        algorithms = (request[12], request[20], request[28]) if len(request) >= 32 else None
        suite_3 = (AUTH_RAKP_HMAC_SHA1, INTEGRITY_HMAC_SHA1_96, CONFIDENTIALITY_AES_CBC_128)
        if algorithms != suite_3:
            self.refused = True
            return bytearray([request[0], RMCP_NO_CIPHER_SUITE_MATCH, 0, 0]) + self.clientsessionid
        self.refused = False
        return super().create_open_session_response(request)

    def _got_rakp1(self, data: bytearray) -> None:
        if self.refused or len(data) < 28:
            return
        name = bytes(data[28:28 + data[27]])
        try:
            known = data[27] > 0 and self.authdata.get(name.decode("utf-8")) is not None
        except UnicodeDecodeError:
            known = False
        if not known:
            refusal = bytearray([data[0], RMCP_UNAUTHORIZED_NAME, 0, 0]) + self.clientsessionid
            _send_rmcp_payload(self, refusal, "rakp2")
            return
        super()._got_rakp1(data[:28 + data[27]])

    def _got_rakp3(self, data: bytearray) -> None:
        if self.refused or self.Rc is None or len(data) < 8:
            return  # no RAKP1 answered in this session: nothing to check RAKP3 against
        super()._got_rakp3(data)

    def close_server_session(self) -> None:
        self.bmc.forget_session(self)


class EmulatedBmc(pyghmi_bmc.Bmc):
    """One BMC: IPMI chassis and boot-option commands mapped onto a ``Machine``."""

    def __init__(self, machine: Machine, sock: socket.socket, users: dict[str, str],
                 kg: bytes | None = None) -> None:
        # IpmiServer.__init__ is deliberately not called: it hands the socket to pyghmi's
        # process-wide IO thread (see the module docstring). These are the attributes it sets.
        self.revision = 0
        self.deviceid = 0
        self.firmwaremajor = 1
        self.firmwareminor = 0
        self.ipmiversion = 2
        self.additionaldevices = 0
        self.mfgid = 0
        self.prodid = 0
        self.uuid = uuid.uuid4()
        self.authdata = users
        ipmi2_only, lan_channel, auth_status, ipmi2_capable = 0b10000000, 1, 0b00000100, 0b10
        self.authcap = bytes([0, lan_channel, ipmi2_only, auth_status, ipmi2_capable, 0, 0, 0, 0])
        self.kg = kg
        self.timeout = SESSION_IDLE_TIMEOUT_S
        self.serversocket = sock
        self.port = sock.getsockname()[1]
        self.machine = machine
        # (client address, this BMC's session id) -> (session, last datagram seen)
        self.sessions: dict[tuple[Any, bytes], tuple[_EmulatedSession, float]] = {}

    # --- datagrams -------------------------------------------------------------------------

    def handle_datagram(self, data: bytes, address: Any) -> None:
        if len(data) < 6 or data[0] != 6 or data[2:4] != b"\xff\x07":
            return  # not RMCP/IPMI
        packet = bytearray(data)
        if packet[4] != 6:
            self.sessionless_data(packet, address)  # IPMI 1.5 framing: never inside a session
            return
        payload_type = packet[5] & 0x3F
        if payload_type == ipmi_constants.payload_types["rmcpplusopenreq"]:
            if len(packet) >= 16 + 8:
                self._open_session(packet, address)
            return
        if payload_type == ipmi_constants.payload_types["ipmi"] and packet[6:10] == bytes(4):
            self.sessionless_data(packet, address)
            return
        key = self._session_key(address, payload_type, packet)
        known = self.sessions.get(key) if key is not None else None
        if key is None or known is None:
            return  # RAKP or session traffic of a session this BMC does not know (any more)
        session = known[0]
        self.sessions[key] = (session, time.monotonic())
        session._handle_ipmi_packet(packet, sockaddr=address)

    def _session_key(self, address: Any, payload_type: int,
                     packet: bytearray) -> tuple[Any, bytes] | None:
        """The session a datagram is for, by the id this BMC gave it: RAKP 1 and 3 name it in
        their payload (the header's is still 0), session traffic in the header. A RAKP naming
        no session of this client goes to its newest one (whose checks then answer it)."""
        if payload_type not in (ipmi_constants.payload_types["rakp1"],
                                ipmi_constants.payload_types["rakp3"]):
            return (address, bytes(packet[6:10]))
        named = (address, bytes(packet[16 + 4:16 + 8]))
        if named in self.sessions:
            return named
        return next((key for key in reversed(self.sessions) if key[0] == address), None)

    def _open_session(self, packet: bytearray, address: Any) -> None:
        session = _EmulatedSession(self.authdata, self.kg, address, self.serversocket,
                                   packet[16:], self.uuid, bmc=self)
        # ServerSession registers itself in pyghmi's process-wide table; this BMC keeps its own.
        handlers = ipmi_session.Session.bmc_handlers.get(address)
        if handlers is not None:
            handlers.pop(self.port, None)
            if not handlers:
                ipmi_session.Session.bmc_handlers.pop(address, None)
        if not session.refused:
            # By the session id this BMC gave it, as a real BMC: a client that retried its
            # open request (or two clients on one UDP port) has several sessions here, and a
            # late RAKP 1 for the first must get the first one's keys, not the newest one's.
            self.sessions[(address, bytes(session.managedsessionid))] = (
                session, time.monotonic())

    def forget_session(self, session: _EmulatedSession) -> None:
        self.sessions.pop((session.sockaddr, bytes(session.managedsessionid)), None)

    def forget_idle_sessions(self, now: float) -> None:
        for key, (_, last_seen) in list(self.sessions.items()):
            if now - last_seen > SESSION_IDLE_TIMEOUT_S:
                del self.sessions[key]

    # --- chassis ---------------------------------------------------------------------------

    def _machine_call(self, action: Callable[[], None]) -> int:
        try:
            action()
        except MachineStateError:
            return CC_NOT_IN_PRESENT_STATE
        return CC_OK

    def get_system_guid(self) -> uuid.UUID:
        return self.uuid

    def get_power_state(self) -> str:
        return self.machine.power_state()

    def power_on(self) -> int:
        return self._machine_call(self.machine.power_on)

    def power_off(self) -> int:
        return self._machine_call(self.machine.power_off)

    def power_reset(self) -> int:
        return self._machine_call(self.machine.power_reset)

    def power_cycle(self) -> int:
        return self._machine_call(self.machine.power_cycle)

    def power_shutdown(self) -> int:
        return self._machine_call(self.machine.soft_shutdown)

    # --- boot options ----------------------------------------------------------------------

    def get_system_boot_options(self, request: dict[str, Any], session: Any) -> None:
        data = request["data"]
        if not data or data[0] & 0x7F != BOOT_FLAGS_PARAMETER:
            session.send_ipmi_response(code=CC_PARAMETER_NOT_SUPPORTED)
            return
        setting = self.machine.boot_setting()
        flags, device = 0, 0
        if setting.device is not None:
            flags = BOOT_FLAG_VALID
            flags |= BOOT_FLAG_PERSISTENT if setting.persistent else 0
            flags |= BOOT_FLAG_EFI if setting.uefi else 0
            device = BOOT_DEVICE_CODES[setting.device] << 2
        parameter_version = 1
        session.send_ipmi_response(
            data=[parameter_version, BOOT_FLAGS_PARAMETER, flags, device, 0, 0, 0])

    def set_system_boot_options(self, request: dict[str, Any], session: Any) -> None:
        data = request["data"]
        parameter = data[0] & 0x7F if data else None
        if parameter in BOOT_PARAMETERS_ACCEPTED:
            session.send_ipmi_response()
            return
        if parameter != BOOT_FLAGS_PARAMETER:
            session.send_ipmi_response(code=CC_PARAMETER_NOT_SUPPORTED)
            return
        if len(data) < 3:
            session.send_ipmi_response(code=CC_INVALID_DATA)
            return
        flags, code = data[1], (data[2] >> 2) & 0x0F
        if not flags & BOOT_FLAG_VALID or code == 0:
            self.machine.set_boot_setting(BootSetting())
            session.send_ipmi_response()
            return
        device = BOOT_DEVICES_BY_CODE.get(code)
        if device is None:
            session.send_ipmi_response(code=CC_INVALID_DATA)
            return
        persistent, uefi = bool(flags & BOOT_FLAG_PERSISTENT), bool(flags & BOOT_FLAG_EFI)
        self.machine.set_boot_setting(BootSetting(device, persistent=persistent, uefi=uefi))
        session.send_ipmi_response()


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


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def control(fleet: BmcFleet, words: list[str]) -> dict[str, Any]:
    """One control command (see the module docstring) applied to ``fleet``."""
    if len(words) < 2:
        raise ValueError("expected: COMMAND PORT [ARGUMENT]")
    verb, port = words[0], int(words[1])
    if verb == "down":
        fleet.set_down(port)
    elif verb == "slow" and len(words) == 3:
        fleet.set_slow(port, float(words[2]))
    elif verb == "password" and len(words) == 3:
        fleet.set_password(port, words[2])
    elif verb == "restore":
        fleet.restore(port)
    elif verb == "power":
        return {"ok": True, "power": fleet.machine(port).power_state()}
    elif verb == "boot":
        setting = fleet.machine(port).boot_setting()
        return {"ok": True, "device": setting.device, "persistent": setting.persistent,
                "uefi": setting.uefi}
    else:
        raise ValueError(f"unknown command {verb!r} or wrong number of arguments")
    return {"ok": True}


def _serve_control(fleet: BmcFleet, stop: threading.Event) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = control(fleet, line.split())
        except (KeyError, ValueError) as error:
            reply = {"ok": False, "error": str(error).strip("'\"")}
        print(json.dumps(reply), flush=True)
    stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.ipmi_bmc",
                                     description="Serve N emulated IPMI BMCs on loopback.")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--base-port", type=int, default=0,
                        help="first UDP port (consecutive ports follow); 0: any free ports")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True,
                        help="file whose first line is the password (kept off the command line)")
    parser.add_argument("--power", choices=(POWER_ON, POWER_OFF), default=POWER_OFF)
    parser.add_argument("--control-stdin", action="store_true",
                        help="read fault and inspection commands from standard input")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    with open(args.password_file) as handle:
        password = handle.readline().rstrip("\n")
    if not password:
        parser.error("the password file is empty")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    _raise_open_file_limit(args.count + 64)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    began = time.monotonic()
    fleet = BmcFleet(args.user, password, host=args.host,
                     machine_factory=lambda: MemoryMachine(power=args.power))
    try:
        ports = [port for port, _ in fleet.start(args.count, args.base_port)]
        print(json.dumps({"event": "ready", "host": args.host, "ports": ports,
                          "startup_s": round(time.monotonic() - began, 3),
                          "rss_kib": _rss_kib()}), flush=True)
        if args.control_stdin:
            threading.Thread(target=_serve_control, args=(fleet, stop), daemon=True).start()
        stop.wait()
    finally:
        fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
