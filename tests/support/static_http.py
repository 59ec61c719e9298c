"""A directory served over HTTP on loopback by the standard library's file server (GET and
HEAD, with Last-Modified and Content-Length), in a thread stopped on exit."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@contextmanager
def serving_directory(directory: Path,
                      handler: type[SimpleHTTPRequestHandler] = SimpleHTTPRequestHandler
                      ) -> Iterator[str]:
    """Serve ``directory``; its base URL (``http://127.0.0.1:PORT``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
