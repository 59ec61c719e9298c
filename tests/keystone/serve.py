"""Serve Keystone's WSGI application on loopback (run by the Keystone venv's python).

Usage: serve.py CONFIG_FILE PORT. A threaded wsgiref server: enough for the tests, and no
compiled server to build. Prints "listening" once the socket accepts connections.
"""

import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog: wsgiref's 5 resets connections under load


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    config_file, port = sys.argv[1], int(sys.argv[2])
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = config_file
    del sys.argv[1:]  # keystone parses the command line with oslo.config
    from keystone.server import wsgi

    application = wsgi.initialize_public_application()
    server = make_server("127.0.0.1", port, application, server_class=_ThreadingServer,
                         handler_class=_QuietHandler)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
