"""The ``socat`` console type's endpoint: a TCP port that carries the serial line as raw bytes,
what Ironic's ``ipmitool-socat`` gives (``socat - tcp:HOST:PORT``, or telnet/nc). Like
Ironic's, it has no authentication of its own: it listens on ENCLUME_CONDUCTOR_CONSOLE_HOST
(loopback by default), on the node's ``ipmi_terminal_port`` or a free port."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.conductor.consoles import Closed, ConsoleSession


class TcpConsolePort:
    def __init__(self, session: ConsoleSession, host: str, port: int) -> None:
        self.session = session
        self._listener = socket.create_server((host, port), reuse_port=False)
        bound_host, bound_port = self._listener.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"tcp://{shown}:{bound_port}"
        self._clients: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name=f"console-tcp-{session.node_uuid[:8]}",
                         daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return
            self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        def deliver(item: bytes | Closed) -> None:
            with contextlib.suppress(OSError):
                if isinstance(item, bytes):
                    client.sendall(item)
                else:
                    client.sendall(f"\r\n[console closed: {item.reason}]\r\n".encode())
                    client.shutdown(socket.SHUT_RDWR)

        if not self.session.attach(deliver):
            client.close()
            return
        try:
            while data := client.recv(4096):
                self.session.write(data)
        except OSError:
            pass
        finally:
            self.session.detach(deliver)
            client.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            # shutdown wakes the thread blocked in accept(); close alone leaves it listening.
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        for client in list(self._clients):
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
