"""What the CLI's client makes of error answers and of a server it cannot reach."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from services.cli.enclume.client import ApiClient, ApiError, fault_message
from services.cli.enclume.config import load_config
from services.cli.enclume.context import error_text


def ironic_error(status: int, message: str) -> httpx.Response:
    fault = {"faultstring": message, "faultcode": "Client", "debuginfo": None}
    return httpx.Response(status, json={"error_message": json.dumps(fault)})


def test_fault_message_unwraps_ironic_errors() -> None:
    assert fault_message(ironic_error(404, "Node x could not be found.")) == \
        "Node x could not be found."
    assert fault_message(httpx.Response(400, json={"error_message": {"faultstring": "dict"}})) \
        == "dict"
    assert fault_message(httpx.Response(422, json={"detail": "plain"})) == "plain"
    assert fault_message(httpx.Response(502, text="Bad gateway from proxy")) == \
        "Bad gateway from proxy"
    assert fault_message(httpx.Response(503, text="")) == "Service Unavailable"


def test_error_text() -> None:
    assert error_text(ApiError(409, "Node locked.")) == "Error: Node locked. (HTTP 409)"
    assert error_text(ApiError(0, "cannot reach http://x")) == "Error: cannot reach http://x"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_is_an_api_error_without_the_password(closed_port: int) -> None:
    config = load_config(url=f"http://admin:pa55word-x@127.0.0.1:{closed_port}",
                         password="other-secret", username="admin", api_version="1.73")
    with ApiClient(config) as client, pytest.raises(ApiError) as caught:
        client.get("/v1/nodes")
    assert caught.value.status == 0
    assert str(caught.value).startswith("cannot reach http://admin:******@127.0.0.1")
    assert "pa55word-x" not in str(caught.value) and "other-secret" not in str(caught.value)
