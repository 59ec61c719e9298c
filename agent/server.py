"""The command API on the machine (port 9999): every request must carry the agent token."""

from __future__ import annotations

import json
import logging
import re
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agent.commands import Busy, Commands
from agent.errors import BadParams
from agent.tokens import TokenState

LOG = logging.getLogger(__name__)
TOKEN_HEADER = "X-Agent-Token"
MAX_BODY = 128 * 1024 * 1024  # a 64 MiB config drive, gzipped and base64-encoded, fits
COMMANDS_PATH = re.compile(r"^/v1/commands/?$")
COMMAND_PATH = re.compile(r"^/v1/commands/([0-9a-f-]{36})/?$")
REFUSALS = {401: "missing agent token: send the X-Agent-Token header",
            403: "wrong agent token"}


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], commands: Commands, token: TokenState) -> None:
        super().__init__(address, Handler)
        self.commands, self.token = commands, token


class Handler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = "enclume-agent"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        LOG.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message})

    def _authorized(self) -> bool:
        refusal = self.server.token.check(self.headers.get(TOKEN_HEADER))
        if refusal:
            if self.server.token.get() is None:
                self._error(401, "this agent has no token yet: it has not looked itself up")
            else:
                self._error(refusal, REFUSALS[refusal])
            return False
        return True

    def _drain(self) -> None:
        """Read and drop a request body we will not use, so the connection stays usable."""
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= MAX_BODY:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if COMMANDS_PATH.match(self.path):
            self._send(200, {"commands": [c.document() for c in self.server.commands.all()]})
            return
        match = COMMAND_PATH.match(self.path)
        command = self.server.commands.get(match.group(1)) if match else None
        if command is None:
            self._error(404, f"no command at {self.path}")
            return
        self._send(200, command.document())

    def do_POST(self) -> None:
        if not self._authorized():
            self._drain()
            return
        if not COMMANDS_PATH.match(self.path):
            self._drain()
            self._error(404, f"nothing to POST to at {self.path}")
            return
        body = self._json_body()
        if body is None:
            return
        name, params = body.get("name"), body.get("params") or {}
        if not isinstance(name, str) or not isinstance(params, dict):
            self._error(400, 'the body must be {"name": "<command>", "params": {...}}')
            return
        try:
            command = self.server.commands.start(name, params)
        except BadParams as exc:
            self._error(400, str(exc))
            return
        except Busy as exc:
            self._error(409, str(exc))
            return
        self._send(200, command.document())

    def _json_body(self) -> dict[str, Any] | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self._error(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
            return None
        if int(length) > MAX_BODY:
            self.close_connection = True
            self._error(413, f"the body is larger than {MAX_BODY} bytes")
            return None
        raw = self.rfile.read(int(length))
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self._error(400, "the body is not valid JSON")
            return None
        if not isinstance(body, dict):
            self._error(400, "the body must be a JSON object")
            return None
        return body

    def do_PUT(self) -> None:
        self._drain()
        self._error(405, "method not allowed")

    do_DELETE = do_PATCH = do_PUT
