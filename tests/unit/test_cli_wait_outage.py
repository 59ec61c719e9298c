"""``--wait`` while the API does not answer (restarted, unreachable for a while): waiting goes
on until the timeout and says so, instead of failing at the first refused connection.

The API is a small loopback HTTP server started late on a port reserved beforehand, answering
503 at first, as an API starting behind a proxy would."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.cli.enclume import progress
from services.cli.enclume.client import ApiClient, ApiError
from services.cli.enclume.config import load_config
from tests.support.json_http import send_json

NODE = {"uuid": "u1", "name": "n1", "provision_state": "active",
        "target_provision_state": None, "power_state": "power on",
        "target_power_state": None, "last_error": None}
UNAVAILABLE_ANSWERS = (502, 503, 504)  # a proxy without its API, then the API starting


class LateApi(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), NodeHandler)
        self.requests = 0


class NodeHandler(BaseHTTPRequestHandler):
    server: LateApi

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests += 1
        status, body = (UNAVAILABLE_ANSWERS[self.server.requests - 1],
                        {"error_message": json.dumps({"faultstring": "starting"})}) \
            if self.server.requests <= len(UNAVAILABLE_ANSWERS) else (200, NODE)
        send_json(self, status, body)


@pytest.fixture
def port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def late_api(port: int) -> Iterator[threading.Event]:
    """Serves from the moment the event is set."""
    go = threading.Event()
    servers: list[LateApi] = []

    def serve() -> None:
        if go.wait(30):
            servers.append(LateApi(port))
            servers[0].serve_forever(poll_interval=0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield go
    go.set()
    while thread.is_alive() and not servers:
        thread.join(0.05)
    for server in servers:
        server.shutdown()
        server.server_close()
    thread.join(5)


def client_of(port: int) -> ApiClient:
    return ApiClient(load_config(url=f"http://127.0.0.1:{port}", api_version="1.73",
                                 timeout_s=5))


def test_waiting_goes_on_while_the_api_is_down_and_starting(
        port: int, late_api: threading.Event, capsys: pytest.CaptureFixture[str]) -> None:
    threading.Timer(0.6, late_api.set).start()
    with client_of(port) as client:
        outcomes = progress.wait_for(client, ["n1"], {"active"}, timeout_s=20,
                                     out=io.StringIO(), poll_s=0.1)
    assert outcomes["n1"].ok, outcomes
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("The API does not answer (") and "retrying until the timeout" \
        in err[0]
    assert err[1].startswith("The API answers again after ")
    assert len(err) == 2  # told once per outage, not at every poll


def test_a_timeout_ends_the_wait_as_timed_out(port: int) -> None:
    with client_of(port) as client:
        outcomes = progress.wait_for(client, ["n1"], {"active"}, timeout_s=0.5,
                                     out=io.StringIO(), poll_s=0.1)
    assert outcomes["n1"].timed_out and not outcomes["n1"].ok


def test_without_a_timeout_it_gives_up_after_a_while(
        port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "UNREACHABLE_GIVE_UP_S", 0.4)
    with client_of(port) as client, pytest.raises(ApiError) as caught:
        progress.wait_for(client, ["n1"], {"active"}, timeout_s=None, out=io.StringIO(),
                          poll_s=0.1)
    assert caught.value.status == 0
