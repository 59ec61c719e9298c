"""The serial consoles a conductor holds open, one per node whose console is enabled.

The node's console interface opens the stream (IPMI SOL through pyghmi, the fake echo line);
this hub keeps it, the last ``HISTORY_BYTES`` it printed (a client that connects sees the
recent output), and its clients: the web page's websocket (console_web.py) and, for the
``socat`` type, a raw TCP port (console_tcp.py). Each enable draws a new token, part of the web
console's URL (the only secret given out, as the URL is Ironic's console_info); a client
without it is refused. Disabling the console, deleting the node or losing the BMC closes the
stream and every client, with the reason; a node that the hash ring gives another conductor has
its console released here (its clients told where it went) and opened by the new owner
(console_ops.py).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.common.config import Settings
from services.drivers.base import ConsoleStream

if TYPE_CHECKING:
    from services.conductor.console_tcp import TcpConsolePort
    from services.conductor.task import Task

LOG = logging.getLogger(__name__)
HISTORY_BYTES = 65536


@dataclass(frozen=True)
class Closed:
    """What a client receives last: why its console ended."""

    reason: str


Deliver = Callable[[bytes | Closed], None]


@dataclass
class ConsoleSession:
    node_uuid: str
    console_type: str
    token: str
    stream: ConsoleStream | None = None
    history: bytearray = field(default_factory=bytearray)
    clients: list[Deliver] = field(default_factory=list)
    tcp: TcpConsolePort | None = None
    closed: Closed | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def output(self, data: bytes) -> None:
        with self.lock:
            if self.closed:
                return
            self.history += data
            del self.history[:-HISTORY_BYTES]
            clients = list(self.clients)
        for deliver in clients:
            deliver(data)

    def attach(self, deliver: Deliver) -> bool:
        """Add a client; it receives the recent output first. False once closed."""
        with self.lock:
            if self.closed:
                return False
            deliver(bytes(self.history))
            self.clients.append(deliver)
            return True

    def detach(self, deliver: Deliver) -> None:
        with self.lock:
            if deliver in self.clients:
                self.clients.remove(deliver)

    def write(self, data: bytes) -> None:
        if self.stream is not None and not self.closed:
            self.stream.write(data)

    def end(self, reason: str, handed_over: bool = False) -> None:
        """Close the stream and every client; ``handed_over``: another conductor takes the
        console over, so the stream is released rather than closed."""
        with self.lock:
            if self.closed:
                return
            self.closed = Closed(reason)
            clients, self.clients = self.clients, []
        for deliver in clients:
            deliver(Closed(reason))
        if self.tcp is not None:
            self.tcp.close()
        if self.stream is not None:
            if handed_over:
                self.stream.release()
            else:
                self.stream.close()


class Consoles:
    """The open consoles of this conductor, by node UUID."""

    def __init__(self, settings: Settings, public_url: str) -> None:
        self.settings = settings
        self.public_url = (settings.conductor.console_url or public_url).rstrip("/")
        self._sessions: dict[str, ConsoleSession] = {}
        self._guard = threading.Lock()

    def open(self, task: Task, on_lost: Callable[[str, str], None]) -> ConsoleSession:
        """Open the node's console (DriverError when it cannot be); ``on_lost(node_uuid,
        reason)`` is called when the stream ends by itself (the BMC went away)."""
        from services.conductor.console_tcp import TcpConsolePort

        interface = task.driver.console
        uuid = task.node.uuid
        self.close(uuid, "console opened again")
        session = ConsoleSession(uuid, interface.console_type, secrets.token_urlsafe(24))

        def lost(reason: str) -> None:
            if self._forget(uuid, session):
                session.end(reason)
                on_lost(uuid, reason)

        session.stream = interface.open_console(task, session.output, lost)
        if session.console_type == "socat":
            try:
                session.tcp = TcpConsolePort(session, self.settings.conductor.console_host,
                                             interface.terminal_port(task))
            except OSError:
                session.end("no TCP port for the console")
                raise
        with self._guard:
            self._sessions[uuid] = session
        LOG.info("console of node %s opened (%s)", uuid, session.console_type)
        return session

    def _forget(self, uuid: str, session: ConsoleSession) -> bool:
        with self._guard:
            if self._sessions.get(uuid) is session:
                del self._sessions[uuid]
                return True
            return False

    def close(self, node_uuid: str, reason: str, handed_over: bool = False) -> bool:
        with self._guard:
            session = self._sessions.pop(node_uuid, None)
        if session is None:
            return False
        session.end(reason, handed_over)
        LOG.info("console of node %s closed: %s", node_uuid, reason)
        return True

    def close_all(self, reason: str) -> None:
        for uuid in list(self._sessions):
            self.close(uuid, reason)

    def is_open(self, node_uuid: str) -> bool:
        return node_uuid in self._sessions

    def open_nodes(self) -> set[str]:
        with self._guard:
            return set(self._sessions)

    def session(self, node_uuid: str, token: str) -> ConsoleSession | None:
        """The node's open console if ``token`` is its current one."""
        session = self._sessions.get(node_uuid)
        if session is None or not secrets.compare_digest(session.token.encode(),
                                                         token.encode()):
            return None
        return session

    def info(self, node_uuid: str) -> dict[str, Any] | None:
        """Ironic's console_info: ``{"type", "url"}``, None when the console is not open."""
        session = self._sessions.get(node_uuid)
        if session is None:
            return None
        if session.tcp is not None:
            return {"type": "socat", "url": session.tcp.url}
        return {"type": session.console_type,
                "url": f"{self.public_url}/console/{node_uuid}?token={session.token}"}

