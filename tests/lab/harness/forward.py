"""A TCP port on 127.0.0.1 of this machine that leads to a service inside a lab namespace.

enclume-aio listens on the service host's address in its namespace, where the machines reach
it. The test process (or the demo, or a `baremetal` client started by hand) talks to it through
this forwarder: each accepted connection gets a twin made inside the namespace
(tests/lab/harness/nsenter.py) and bytes are pumped both ways. Only loopback is listened on.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.lab.harness.nsenter import in_netns

CHUNK = 65536
ACCEPT_POLL_S = 0.2
CONNECT_TIMEOUT_S = 10.0
LOOPBACK = "127.0.0.1"


class _Connection:
    """A client connection and its twin in the namespace; closed when both pumps ended."""

    def __init__(self, client: socket.socket, inside: socket.socket) -> None:
        self._sockets = (client, inside)
        self._running = 2
        self._lock = threading.Lock()
        for source, sink in ((client, inside), (inside, client)):
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
            for sock in self._sockets:
                sock.close()


class LoopbackForwarder:
    """127.0.0.1:<free port> -> `address`:`port` inside the namespace `netns`."""

    def __init__(self, netns: str, address: str, port: int) -> None:
        self._netns = netns
        self._target = (address, port)
        self._stop = threading.Event()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((LOOPBACK, 0))
        self._server.listen(64)
        self._server.settimeout(ACCEPT_POLL_S)
        self.port = self._server.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self._accept, name=f"forward-{netns}",
                                        daemon=True)
        self._thread.start()

    def _connect_inside(self) -> socket.socket:
        def connect() -> socket.socket:
            return socket.create_connection(self._target, timeout=CONNECT_TIMEOUT_S)

        inside = in_netns(self._netns, connect)
        inside.settimeout(None)
        return inside

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
                inside = self._connect_inside()
            except OSError:
                client.close()  # the service is not (yet) listening: the client sees a reset
                continue
            _Connection(client, inside)

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(timeout=ACCEPT_POLL_S * 10)
