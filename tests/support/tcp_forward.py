"""A TCP port on one local address that leads to another: lets a process in a test namespace
(tests/support/netns.py) reach a service that listens on loopback only, through the veth's root
side address. Each accepted connection is paired with a new one to the target, bytes pumped
both ways; closed with ``close`` (also as a context manager)."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

CHUNK = 65536
ACCEPT_POLL_S = 0.2


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass  # one side went away
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class TcpForwarder:
    def __init__(self, listen_host: str, target: tuple[str, int], port: int = 0) -> None:
        self._target = target
        self._stop = threading.Event()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((listen_host, port))
        self._server.listen(64)
        self._server.settimeout(ACCEPT_POLL_S)
        self.port: int = self._server.getsockname()[1]
        self.url = f"http://{listen_host}:{self.port}"
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="tcp-forward", daemon=True)
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
                target = socket.create_connection(self._target, timeout=10)
            except OSError:
                client.close()
                continue
            target.settimeout(None)
            self._sockets += [client, target]
            for source, sink in ((client, target), (target, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(timeout=ACCEPT_POLL_S * 10)
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> TcpForwarder:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
