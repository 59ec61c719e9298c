"""A recording stand-in for the API's two agent endpoints, run as a process in a namespace host.

Tests that drive an agent's command API themselves need the one-time token that the real API
hands only to the agent; this server issues a token the test chose, answers exactly as the
agent protocol says (docs/agent.md), and appends every call to a JSON-lines file:

    GET  /v1/lookup?addresses=<mac>,...[&node_uuid=<uuid>] -> 200 node + config, token at the
         first lookup ("******" after), 404 for other MACs or another node
    POST /v1/heartbeat/<uuid> {"callback_url", "agent_token", "agent_version"} -> 202; 401 without
         a token, 403 with a wrong one, 404 for another node

    python -m tests.lab.harness.agent_api CONFIG.json   # {"host", "port", "node_uuid", "macs",
                                                        #  "token", "record", "heartbeat_timeout"}
"""

from __future__ import annotations

import hmac
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.lab.harness.netns import NetnsHost
from tests.lab.harness.processes import LabError, ManagedProcess, tail, wait_until
from tests.support.json_http import send_json

READY_TIMEOUT_S = 30.0
REPO_ROOT = Path(__file__).resolve().parents[3]
MASK = "******"


class AgentApi:
    """The server's state: one node, its MACs, its token, and the calls so far."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.node_uuid = str(config["node_uuid"])
        self.macs = {mac.lower() for mac in config["macs"]}
        self.token = str(config["token"])
        self.heartbeat_timeout = int(config.get("heartbeat_timeout", 30))
        self.record_path = Path(config["record"])
        self.token_issued = False
        self.lock = threading.Lock()

    def record(self, call: dict[str, Any]) -> None:
        with self.lock, self.record_path.open("a") as record:
            record.write(json.dumps({**call, "time": time.time()}) + "\n")

    def lookup(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        addresses = [mac.strip().lower() for value in query.get("addresses", [])
                     for mac in value.split(",") if mac.strip()]
        node_uuid = query.get("node_uuid", [None])[0]
        self.record({"call": "lookup", "addresses": addresses, "node_uuid": node_uuid})
        if not self.macs & set(addresses) or node_uuid not in (None, self.node_uuid):
            return 404, {"error_message": "No node in a state that expects an agent was found "
                                          "for these addresses."}
        with self.lock:
            token, self.token_issued = (MASK if self.token_issued else self.token), True
        return 200, {"node": {"uuid": self.node_uuid, "properties": {}, "instance_info": {},
                              "driver_internal_info": {}, "provision_state": "deploy wait"},
                     "config": {"heartbeat_timeout": self.heartbeat_timeout,
                                "agent_token": token, "agent_token_required": True}}

    def heartbeat(self, node_uuid: str, body: Any) -> tuple[int, Any]:
        if node_uuid != self.node_uuid:
            return 404, {"error_message": f"Node {node_uuid} could not be found."}
        if not isinstance(body, dict):
            return 400, {"error_message": "Invalid heartbeat: expected a JSON object."}
        token = body.get("agent_token")
        if not token:
            status = 401
        elif not hmac.compare_digest(str(token), self.token):
            status = 403
        else:
            status = 202
        self.record({"call": "heartbeat", "status": status,
                     "callback_url": body.get("callback_url"),
                     "agent_version": body.get("agent_version")})
        return status, None if status == 202 else {"error_message": "agent token refused"}


def serve(config: dict[str, Any]) -> None:
    api = AgentApi(config)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

        def reply(self, status: int, body: Any) -> None:
            send_json(self, status, body)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/v1/lookup":
                self.reply(404, {"error_message": "not found"})
                return
            self.reply(*api.lookup(urllib.parse.parse_qs(url.query)))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            prefix = "/v1/heartbeat/"
            if not self.path.startswith(prefix):
                self.reply(404, {"error_message": "not found"})
                return
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            self.reply(*api.heartbeat(self.path.removeprefix(prefix), body))

    server = ThreadingHTTPServer((config["host"], int(config["port"])), Handler)
    server.serve_forever()


class RecordingAgentApi:
    """The server running in a namespace host, and what it recorded."""

    def __init__(self, host: NetnsHost, workdir: Path, port: int, node_uuid: str,
                 macs: list[str], token: str, heartbeat_timeout: int = 30) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.record_path = workdir / "agent-api-calls.jsonl"
        self.record_path.touch()
        self.url = f"http://{host.ipv4}:{port}"
        config_path = workdir / "agent-api.json"
        config_path.write_text(json.dumps({
            "host": host.ipv4, "port": port, "node_uuid": node_uuid, "macs": macs,
            "token": token, "record": str(self.record_path),
            "heartbeat_timeout": heartbeat_timeout}))
        self.process: ManagedProcess = host.run(
            [sys.executable, "-m", "tests.lab.harness.agent_api", str(config_path)],
            "agent-api", env={"PYTHONPATH": str(REPO_ROOT)})

        def answers() -> bool:
            self.process.check_alive()
            try:
                return host.http_request("GET", self.url + "/", timeout_s=2)[0] == 404
            except LabError:  # not listening yet
                return False

        wait_until(answers, READY_TIMEOUT_S, "the recording agent API", interval=0.3,
                   on_timeout=lambda: tail(self.process.log_path))

    def calls(self, kind: str | None = None) -> list[dict[str, Any]]:
        lines = self.record_path.read_text().splitlines()
        calls = [json.loads(line) for line in lines if line.strip()]
        return [call for call in calls if kind is None or call["call"] == kind]

    def first_accepted_heartbeat(self) -> dict[str, Any] | None:
        accepted = [call for call in self.calls("heartbeat") if call["status"] == 202]
        return accepted[0] if accepted else None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        raise LabError("usage: python -m tests.lab.harness.agent_api CONFIG.json")
    serve(json.loads(Path(argv[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
