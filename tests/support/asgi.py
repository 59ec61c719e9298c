"""Serving an ASGI app with a real uvicorn in a thread of the test process, on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from services.common.config_service_sections import ProcessSettings


def bound_socket() -> socket.socket:
    """A TCP socket bound to a free loopback port, to hand to ``serving`` later."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket, scheme: str = "http") -> str:
    host, port = sock.getsockname()
    return f"{scheme}://{host}:{port}"


@contextmanager
def serving(app: Any, sock: socket.socket | None = None, timeout: float = 10.0,
            tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Run ``app`` (lifespan included) until the block ends; yields its base URL. ``tls``:
    (certificate, key) files to serve https with."""
    sock = sock or bound_socket()
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="warning", lifespan="on",
        timeout_keep_alive=ProcessSettings().http_keep_alive_s,
        ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the ASGI app did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock, "https" if tls else "http")
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
