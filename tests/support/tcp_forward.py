"""A TCP port on one local address that leads somewhere else: a service that listens on
loopback only, reached from a test namespace through the veth's root-side address
(tests/support/netns.py), or a service inside a lab namespace reached from 127.0.0.1
(tests/lab/harness/forward.py). Each accepted connection gets a twin from ``connect`` and bytes
are pumped both ways; closed with ``close`` (also as a context manager)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

CHUNK = 65536
ACCEPT_POLL_S = 0.2
CONNECT_TIMEOUT_S = 10.0


class _Connection:
    """A client connection and its twin; both closed when both pumps ended."""

    def __init__(self, client: socket.socket, twin: socket.socket) -> None:
        self.sockets = (client, twin)
        self._running = 2
        self._lock = threading.Lock()
        for source, sink in ((client, twin), (twin, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass  # one side went away
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # pass the end of the stream on
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self.close()

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


def connector(target: tuple[str, int]) -> Callable[[], socket.socket]:
    """Connect to ``target`` from here."""
    return lambda: socket.create_connection(target, timeout=CONNECT_TIMEOUT_S)


class TcpForwarder:
    def __init__(self, listen_host: str, target: tuple[str, int] | None = None, port: int = 0,
                 *, connect: Callable[[], socket.socket] | None = None,
                 name: str = "tcp-forward") -> None:
        if (target is None) == (connect is None):
            raise ValueError("give a target address or a connect function")
        self._connect = connect or connector(target)  # type: ignore[arg-type]
        self._stop = threading.Event()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((listen_host, port))
        self._server.listen(64)
        self._server.settimeout(ACCEPT_POLL_S)
        self.port: int = self._server.getsockname()[1]
        self.url = f"http://{listen_host}:{self.port}"
        self._connections: list[_Connection] = []
        self._thread = threading.Thread(target=self._accept, name=name, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                twin = self._connect()
            except OSError:
                client.close()  # the service is not (yet) listening: the client sees a reset
                continue
            twin.settimeout(None)
            self._connections.append(_Connection(client, twin))

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(timeout=ACCEPT_POLL_S * 10)
        for connection in self._connections:
            connection.close()

    def __enter__(self) -> TcpForwarder:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
