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

import contextlib
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


class _SolLoop:
    """The one thread that makes every pyghmi SOL call of the process and runs pyghmi's event
    loop between them: pyghmi's console is driven by whoever calls ``wait_for_rsp`` and is not
    safe to drive from two threads at once (a second thread's writes stalled the acks)."""

    def __init__(self) -> None:
        self._actions: queue.Queue[Callable[[], None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.open_streams = 0  # changed on the SOL thread only

    def submit(self, action: Callable[[], None]) -> None:
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ipmi-sol", daemon=True)
                self._thread.start()
        self._actions.put(action)

    def _run(self) -> None:
        while True:
            if not self.open_streams:
                # pyghmi's wait_for_rsp blocks for good while it has no session at all.
                try:
                    self._call(self._actions.get(timeout=1.0))
                except queue.Empty:
                    continue
            # Only what was queued before this pass: an action that queues itself again (a
            # wait for activation) runs once per turn of pyghmi's loop.
            for _ in range(self._actions.qsize()):
                self._call(self._actions.get_nowait())
            if self.open_streams:
                ipmi_console.Console.wait_for_rsp(POLL_S)

    @staticmethod
    def _call(action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:  # one stream's failure must not stop every other console
            LOG.exception("IPMI SOL call failed")


LOOP = _SolLoop()


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
        LOOP.open_streams += 1
        try:
            self._console = ipmi_console.Console(
                bmc=access.address, userid=access.username.encode(),
                password=access.password.encode(), iohandler=self._received, port=access.port,
                force=True, kg=access.kg)
        except (pyghmi_exceptions.PyghmiException, OSError) as exc:
            LOOP.open_streams -= 1
            self._failure = str(exc) or type(exc).__name__
            return
        LOOP.submit(self._check_connected)

    def _check_connected(self) -> None:
        console = self._console
        if console is None or self._failure is not None:
            return
        if console.connected:
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
            elif not self._closed:
                self._closed = True
                self._on_lost(scrub(f"IPMI SOL at {self._access.where}: {message}"))
            return
        self._on_output(data.encode() if isinstance(data, str) else bytes(data))

    def write(self, data: bytes) -> None:
        if not self._closed:
            LOOP.submit(lambda: self._send(data))

    def _send(self, data: bytes) -> None:
        if self._console is not None and not self._closed:
            self._console.send_data(data)

    def close(self) -> None:
        self._closed = True
        LOOP.submit(self._deactivate)

    def _deactivate(self) -> None:
        console, self._console = self._console, None
        if console is not None:
            LOOP.open_streams -= 1
            # A session that is gone has nothing to deactivate.
            with contextlib.suppress(pyghmi_exceptions.PyghmiException, OSError,
                                     AttributeError):
                console.close()


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
