"""IPMI Serial-over-LAN consoles on pyghmi's ``Console``, under Ironic's interface names.

``ipmitool-socat`` (console_info type ``socat``: a TCP URL) and ``ipmitool-shellinabox`` (type
``shellinabox``: a web page) keep those names so that inventories written for Ironic or Bifrost
choose them unchanged; both open the SOL payload with pyghmi (no ipmitool process), and the
conductor serves the session (services/conductor/consoles.py). driver_info keys are Ironic's:
the ipmi credentials and ``ipmi_terminal_port``.

An SOL payload still held by a session that is gone (a conductor that died) is taken over
(pyghmi's ``force``: deactivate, then activate), as ``ipmitool sol deactivate`` would.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyghmi import exceptions as pyghmi_exceptions
from pyghmi.ipmi import console as ipmi_console

from services.common.config import Settings
from services.common.secrets import scrub
from services.drivers.base import ConsoleInterface, ConsoleStream, DriverError
from services.drivers.ipmi import IpmiAccess, access_of, terminal_port

if TYPE_CHECKING:
    from services.conductor.task import Task

LOG = logging.getLogger(__name__)
POLL_S = 0.1
PROBE_S = 5.0  # how often an open SOL session's BMC is asked whether it is still there
PROBE_TIMEOUT_S = 2.0  # pyghmi's retry timer of a probe
# No answer to the probes for this long ends the console: pyghmi's own verdict on a dead BMC
# comes later (its retries, then as many logins again, ~60 s) or not at all (a probe whose
# outcome it drops while it logs in again).
SILENCE_LIMIT_S = 20.0
RESENDS = 5  # of an SOL packet the BMC does not acknowledge, as pyghmi


class _SolLoop:
    """The one thread that makes every pyghmi SOL call of the process and runs pyghmi's event
    loop between them: pyghmi's console is driven by whoever calls ``wait_for_rsp`` and is not
    safe to drive from two threads at once (a second thread's writes stalled the acks)."""

    def __init__(self) -> None:
        self._actions: queue.Queue[Callable[[], None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.streams: set[_SolStream] = set()  # the open ones; changed on the SOL thread only
        self._next_probe = 0.0

    def submit(self, action: Callable[[], None]) -> None:
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ipmi-sol", daemon=True)
                self._thread.start()
        self._actions.put(action)

    def _run(self) -> None:
        while True:
            if not self.streams:
                # pyghmi's wait_for_rsp blocks for good while it has no session at all.
                try:
                    self._call(self._actions.get(timeout=1.0))
                except queue.Empty:
                    continue
            # Only what was queued before this pass: an action that queues itself again (a
            # wait for activation) runs once per turn of pyghmi's loop.
            for _ in range(self._actions.qsize()):
                self._call(self._actions.get_nowait())
            if self.streams:
                ipmi_console.Console.wait_for_rsp(POLL_S)
                self._probe_when_due()
                for stream in list(self.streams):
                    self._call(stream.resend_when_due)

    def _probe_when_due(self) -> None:
        now = time.monotonic()
        if now >= self._next_probe:
            self._next_probe = now + PROBE_S
            for stream in list(self.streams):
                self._call(stream.probe)

    @staticmethod
    def _call(action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:  # one stream's failure must not stop every other console
            LOG.exception("IPMI SOL call failed")


LOOP = _SolLoop()


class _Console(ipmi_console.Console):
    """pyghmi's SOL console whose sending does not wait in the shared loop for the BMC's ack
    (pyghmi's ``_sendoutput`` turns the loop for up to ~12 s when that BMC has just died,
    while the other consoles' typing waits): a packet not acknowledged is sent again from the
    SOL thread's turns (``resend_when_due``), pyghmi's 5 times at its intervals, then the
    console is lost as pyghmi would ("Connection lost")."""

    _sent_at = 0.0
    _resends = 0

    def _sendoutput(self, output: Any, sendbreak: bool = False) -> None:
        self.myseq = (self.myseq + 1) & 0xF or 1
        data = output if isinstance(output, (bytes, bytearray)) else output.encode("utf8")
        self.lasttextsize = len(data)
        self.awaitingack = True
        self.lastpayload = bytearray((self.myseq, 0, 0, 0b10000 if sendbreak else 0)) + data
        self._resends = 0
        self._sent_at = time.monotonic()
        self.send_payload(self.lastpayload, retry=False, needskeepalive=not data)

    def resend_when_due(self) -> None:
        if not self.awaitingack or self.broken or self.ipmi_session is None:
            return
        # pyghmi waits 0.5, 1.5, 2.5, 3.5 then 4.5 s before each resend
        if time.monotonic() - self._sent_at < 0.5 + self._resends:
            return
        if self._resends >= RESENDS:
            self._print_error("Connection lost")
            return
        self._resends += 1
        self._sent_at = time.monotonic()
        self.send_payload(self.lastpayload, retry=False, needskeepalive=self.lasttextsize == 0)


class _SolStream(ConsoleStream):
    """One activated SOL payload: pyghmi calls ``_received`` on the SOL thread with the
    machine's bytes, or a dict when the session ends or fails."""

    def __init__(self, access: IpmiAccess, on_output: Callable[[bytes], None],
                 on_lost: Callable[[str], None]) -> None:
        self._access = access
        self._on_output = on_output
        self._on_lost = on_lost
        self._failure: str | None = None
        self._connected = threading.Event()
        self._closed = False
        self._console: Any = None
        self._probing = False
        self._answered_at = time.monotonic()

    def connect(self, timeout_s: float) -> None:
        LOOP.submit(self._open)
        deadline = time.monotonic() + timeout_s
        while self._failure is None and not self._connected.wait(POLL_S):
            if time.monotonic() >= deadline:
                self._failure = f"no answer within {timeout_s:.0f} s"
        if self._failure is not None:
            self.close()
            raise DriverError(scrub(f"IPMI SOL at {self._access.where} failed: "
                                    f"{self._failure}"))

    def _open(self) -> None:
        access = self._access
        LOOP.streams.add(self)
        try:
            self._console = _Console(
                bmc=access.address, userid=access.username.encode(),
                password=access.password.encode(), iohandler=self._received, port=access.port,
                force=True, kg=access.kg)
        except (pyghmi_exceptions.PyghmiException, OSError) as exc:
            LOOP.streams.discard(self)
            self._failure = str(exc) or type(exc).__name__
            return
        LOOP.submit(self._check_connected)

    def _check_connected(self) -> None:
        console = self._console
        if console is None or self._failure is not None:
            return
        if console.connected:
            # No login again after a timeout (pyghmi keeps one in reserve): while a session
            # logs in, pyghmi's keepalive of it waits in the shared loop for the login (~30 s
            # for a dead BMC), holding every other console. A timeout ends the console.
            console.ipmi_session.logontries = 0
            self._answered_at = time.monotonic()
            self._connected.set()
        elif not self._closed:
            LOOP.submit(self._check_connected)

    def _received(self, data: Any) -> None:
        if isinstance(data, dict):
            if "error" not in data:
                return  # {"info": ...}
            message = str(data["error"])
            if not self._connected.is_set():
                self._failure = message
            else:
                self._lose(message)
            return
        self._on_output(data.encode() if isinstance(data, str) else bytes(data))

    def _lose(self, message: str) -> None:
        """The BMC is gone: forget the payload without deactivating it (that would wait for
        the BMC again), then say so."""
        console, self._console = self._console, None
        LOOP.streams.discard(self)
        session = console.ipmi_session if console is not None else None
        if session is not None and not session.broken:
            # pyghmi's own end of a failed session: left alone, it goes on logging in again
            # and retrying, and its packets disturbed the other consoles' SOL. The command in
            # flight is dropped first: _mark_broken's logout would wait for its answer.
            session.unregister_keepalive(console.keepaliveid)
            session.sol_handler = None
            session.incommand = False
            session._mark_broken(message)
        if not self._closed:
            self._closed = True
            self._on_lost(scrub(f"IPMI SOL at {self._access.where}: {message}"))

    def probe(self) -> None:
        """Ask the BMC whether the payload is still ours (pyghmi's own SOL keepalive command,
        Get Payload Instance Info): pyghmi notices a BMC gone only when it sends data. The
        probe is not waited for: its answer, or pyghmi's timeout after its retries, comes
        back through pyghmi's loop (``_probed``), so a dead BMC holds no other console."""
        console = self._console
        if console is None or self._closed or not self._connected.is_set():
            return
        session = console.ipmi_session
        if session is None or console.broken:
            self._lose("the SOL session ended")
            return
        silent_s = time.monotonic() - self._answered_at
        if silent_s > SILENCE_LIMIT_S:
            self._lose(f"the BMC has not answered for {silent_s:.0f} s")
            return
        if self._probing or session.logging or not session.logged or session._isincommand():
            return  # raw_command would wait for the command or login in flight
        self._probing = True
        try:
            session.raw_command(netfn=6, command=0x4b, data=(1, 1), timeout=PROBE_TIMEOUT_S,
                                callback=session._keepalive_wrapper(self._probed))
        except (pyghmi_exceptions.PyghmiException, OSError) as exc:
            self._probed({"error": str(exc) or type(exc).__name__})

    def _probed(self, answer: Any) -> None:
        self._probing = False
        if isinstance(answer, dict) and answer.get("error"):
            self._lose(f"the BMC does not answer ({answer['error']})")
        else:
            self._answered_at = time.monotonic()

    def resend_when_due(self) -> None:
        if self._console is not None and not self._closed:
            self._console.resend_when_due()

    def write(self, data: bytes) -> None:
        if not self._closed:
            LOOP.submit(lambda: self._send(data))

    def _send(self, data: bytes) -> None:
        if self._console is not None and not self._closed:
            self._console.send_data(data)

    def close(self) -> None:
        self._closed = True
        LOOP.submit(lambda: self._end(deactivate=True))

    def release(self) -> None:
        """Forget the payload without deactivating it: the conductor that takes the node over
        activates it with ``force``, and a deactivation sent from here after that would end
        the new owner's session."""
        self._closed = True
        LOOP.submit(lambda: self._end(deactivate=False))

    def _end(self, deactivate: bool) -> None:
        """pyghmi's ``Console.close``, but the deactivation sent once: its retries would hold
        the SOL thread (every console of the process) ~25 s when the BMC has just gone away."""
        console, self._console = self._console, None
        LOOP.streams.discard(self)
        session = console.ipmi_session if console is not None else None
        if session is None:
            return
        session.unregister_keepalive(console.keepaliveid)
        if session.sol_handler == console._got_sol_payload:
            # pyghmi's logout of a session with an SOL handler deactivates the payload.
            session.sol_handler = None
        if deactivate and console.activated:
            _send_once(session, 0x49, (1, 1, 0, 0, 0, 0))


def _send_once(session: Any, command: int, data: tuple[int, ...]) -> None:
    """An IPMI application command on ``session``, sent once and not waited for."""
    try:
        session.raw_command(netfn=6, command=command, data=data, retry=False)
    except (pyghmi_exceptions.PyghmiException, OSError) as exc:
        LOG.info("IPMI command %#x not sent: %s", command, exc)


class IpmiSolConsole(ConsoleInterface):
    def __init__(self, console_type: str, settings: Settings) -> None:
        self.console_type = console_type
        self.timeout_s = settings.ipmi.timeout_s

    def validate(self, task: Task) -> None:
        access_of(task.node.driver_info)
        terminal_port(task.node.driver_info)

    def terminal_port(self, task: Task) -> int:
        return terminal_port(task.node.driver_info)

    def open_console(self, task: Task, on_output: Callable[[bytes], None],
                     on_lost: Callable[[str], None]) -> ConsoleStream:
        stream = _SolStream(access_of(task.node.driver_info), on_output, on_lost)
        stream.connect(self.timeout_s)
        return stream


def socat_console(settings: Settings) -> IpmiSolConsole:
    return IpmiSolConsole("socat", settings)


def shellinabox_console(settings: Settings) -> IpmiSolConsole:
    return IpmiSolConsole("shellinabox", settings)
