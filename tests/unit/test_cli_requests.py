"""``put_state`` and ``each_node``: requests about many nodes in parallel (bounded), reported in
the order given.

The peer is a small HTTP server on loopback that answers like the API's states endpoint and
holds each request until ``PARALLEL`` of them are under way at once: requests sent one after
another never get there (the server then answers 503)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import typer

from services.cli.enclume.client import ApiClient, ApiError
from services.cli.enclume.config import load_config
from services.cli.enclume.requests import DEFAULT_CONCURRENCY, each_node, put_state
from tests.support.json_http import send_json

PARALLEL = 3
assert DEFAULT_CONCURRENCY >= PARALLEL
NODES = [f"pc-{index}" for index in range(2 * PARALLEL)]
REFUSED = "pc-1"


class StatesServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StatesHandler)
        self.barrier = threading.Barrier(PARALLEL, timeout=5)
        self.bodies: dict[str, dict] = {}
        self.lock = threading.Lock()


class StatesHandler(BaseHTTPRequestHandler):
    server: StatesServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.hold_then_answer(body)

    def do_DELETE(self) -> None:
        self.hold_then_answer(None)

    def hold_then_answer(self, body: dict | None) -> None:
        node = self.path.split("/")[3]  # /v1/nodes/<node>/states/provision, /v1/nodes/<node>
        with self.server.lock:
            self.server.bodies[node] = body
        try:
            self.server.barrier.wait()
        except threading.BrokenBarrierError:
            self.answer(503, "requests came one at a time")
            return
        # Answers arrive in the reverse order of the nodes given.
        time.sleep((len(NODES) - NODES.index(node)) * 0.03)
        if node == REFUSED:
            self.answer(409, f"Node {node} is locked by host other.")
        else:
            self.answer(202 if body is not None else 204, None)

    def answer(self, status: int, fault: str | None) -> None:
        send_json(self, status, None if fault is None else
                  {"error_message": json.dumps({"faultstring": fault})})


@pytest.fixture
def server() -> Iterator[StatesServer]:
    server = StatesServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def client_of(url: str) -> ApiClient:
    return ApiClient(load_config(url=url, api_version="1.73", timeout_s=10))


def test_requests_run_in_parallel_and_print_in_the_order_given(
        server: StatesServer, capsys: pytest.CaptureFixture[str]) -> None:
    with client_of(f"http://127.0.0.1:{server.server_address[1]}") as client:
        # The default concurrency: what `enclume node manage --label ...` uses.
        accepted = put_state(client, NODES, "provision", {"target": "manage"},
                             "manage requested")
    out, err = capsys.readouterr()
    assert accepted == [node for node in NODES if node != REFUSED]
    assert out.splitlines() == [f"{node}: manage requested" for node in accepted]
    assert err == f"Error: Node {REFUSED} is locked by host other. (HTTP 409)\n"
    assert server.bodies == {node: {"target": "manage"} for node in NODES}


def test_each_node_calls_in_parallel_and_exits_1_after_a_refusal(
        server: StatesServer, capsys: pytest.CaptureFixture[str]) -> None:
    """What `enclume node delete` and `maintenance set/unset` do for many nodes."""
    with client_of(f"http://127.0.0.1:{server.server_address[1]}") as client, \
            pytest.raises(typer.Exit) as exited:
        each_node(NODES, lambda node: client.delete(f"/v1/nodes/{node}"),
                  lambda node: f"Deleted node {node}")
    out, err = capsys.readouterr()
    assert exited.value.exit_code == 1
    assert out.splitlines() == [f"Deleted node {node}" for node in NODES if node != REFUSED]
    assert err == f"Error: Node {REFUSED} is locked by host other. (HTTP 409)\n"
    assert server.bodies == {node: None for node in NODES}


def test_a_lost_connection_ends_everything(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with client_of(f"http://127.0.0.1:{port}") as client, pytest.raises(ApiError) as caught:
        put_state(client, NODES * 20, "power", {"target": "power on"}, "power on requested")
    assert caught.value.status == 0
    assert capsys.readouterr().out == ""
