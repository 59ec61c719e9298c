"""Answering as a JSON API from the small loopback HTTP servers tests stand up."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from socketserver import TCPServer
from typing import Any


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any | None) -> None:
    """``body`` as JSON with ``status``; None: an empty body (as the API's 202 and 204)."""
    data = b"" if body is None else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextmanager
def serving(server: TCPServer) -> Iterator[None]:
    """``server`` answering from a thread of its own while the block runs; shut down after."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
