"""Serial consoles (#22) through enclume-aio's app (API, in-process conductor, the web
consoles on the API's port), against OpenIPMI's ipmi_sim serving Serial-over-LAN
(tests/support/sol_bmc.py): bytes typed in the websocket reach the emulated serial line and
the line's output comes back; the socat type's TCP port does the same; deleting the node or
disabling the console closes a connected client with the reason; a BMC that cannot be reached
leaves console_enabled false with the reason in last_error, and one that goes away while the
console is open ends it the same way, while another BMC's console of the same conductor goes
on; ipmitool's ``sol activate`` works against the same emulator."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websocket

from services.aio import build
from services.common.config import Settings
from tests.support.aio import free_port
from tests.support.api_stack import HEADERS
from tests.support.asgi import bound_socket, serving
from tests.support.polling import eventually
from tests.support.sol_bmc import SerialLine, SolBmc

pytestmark = [pytest.mark.integration]

# A console going on while another's BMC is dead: each echo round (line -> web console, web
# console -> line) within the larger of this and STALL_FACTOR times the slowest round of the
# same console before and after, under the same load. A stall held every console for the dead
# BMC's whole retry time: >= 12.5 s for the typed bytes' ack (0.5 + 1.5 + ... + 4.5 s), ~30 s for
# the liveness probe.
STALL_BOUND_S = 10.0
STALL_FACTOR = 4
BASELINE_ROUNDS = 3
# Only so that a broken console fails the test instead of hanging it: not what it proves.
ECHO_GIVE_UP_S = 60.0


@dataclass
class Stack:
    api: httpx.Client
    url: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("console")
    sock = bound_socket()
    port = sock.getsockname()[1]
    settings = Settings(process={"data_dir": tmp}, api={"port": port},
                        conductor={"hostname": "conductor-console"}, ipmi={"timeout_s": 3})
    with serving(build(settings), sock=sock) as url, httpx.Client(
            base_url=url, timeout=15, headers=HEADERS) as api:
        yield Stack(api, url)


@pytest.fixture
def sol(tmp_path: Path) -> Iterator[tuple[SolBmc, SerialLine]]:
    line = SerialLine()
    with SolBmc(tmp_path / "bmc", line.address) as bmc:
        eventually(lambda: line.connected, 10, "ipmi_sim connecting to the serial line")
        yield bmc, line
    line.close()


def enroll(api: httpx.Client, driver: str, driver_info: dict[str, Any],
           console_interface: str) -> str:
    response = api.post("/v1/nodes", json={"driver": driver, "driver_info": driver_info,
                                           "console_interface": console_interface})
    assert response.status_code == 201, response.text
    return str(response.json()["uuid"])


def enabled_console(api: httpx.Client, uuid: str) -> dict[str, Any]:
    response = api.put(f"/v1/nodes/{uuid}/states/console", json={"enabled": True})
    assert response.status_code == 202, response.text
    try:
        state: dict[str, Any] = eventually(
            lambda: (s := api.get(f"/v1/nodes/{uuid}/states/console").json())[
                "console_enabled"] and s, 15, "the console enabled")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last_error: "
                             f"{api.get(f'/v1/nodes/{uuid}').json()['last_error']}") from None
    return state


def ws_url(info: dict[str, Any]) -> str:
    base, query = info["url"].split("?", 1)
    return base.replace("http://", "ws://", 1) + "/ws?" + query


def received_until(ws: websocket.WebSocket, marker: bytes, timeout: float = 10) -> bytes:
    ws.settimeout(timeout)
    seen = b""
    while marker not in seen:
        frame = ws.recv()
        seen += frame if isinstance(frame, bytes) else frame.encode()
    return seen


def close_frame(ws: websocket.WebSocket) -> tuple[int, bytes]:
    """The code and reason of the server's close frame (data frames before it skipped)."""
    ws.settimeout(10)
    while True:
        opcode, payload = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(payload[:2], "big"), payload[2:]


def test_web_console_carries_sol_both_ways(stack: Stack, sol: tuple[SolBmc, SerialLine]
                                           ) -> None:
    bmc, line = sol
    uuid = enroll(stack.api, "ipmi", bmc.driver_info(), "ipmitool-shellinabox")
    assert stack.api.get(f"/v1/nodes/{uuid}/states/console").json() == {
        "console_enabled": False, "console_info": None}
    info = enabled_console(stack.api, uuid)["console_info"]
    assert info["type"] == "shellinabox"
    assert info["url"].startswith(f"{stack.url}/console/{uuid}?token=")
    page = httpx.get(info["url"])
    assert page.status_code == 200 and "WebSocket" in page.text

    ws = websocket.create_connection(ws_url(info), timeout=10)
    line.send(b"login: from the serial line\r\n")
    assert b"login: from the serial line" in received_until(ws, b"serial line")
    ws.send_binary(b"root\r")
    eventually(lambda: b"root\r" in line.received(), 10, "typed bytes on the serial line")

    # Disabling closes the connected client with the reason; the token no longer works.
    assert stack.api.put(f"/v1/nodes/{uuid}/states/console",
                         json={"enabled": False}).status_code == 202
    assert close_frame(ws) == (1000, b"console disabled")
    eventually(lambda: not stack.api.get(f"/v1/nodes/{uuid}").json()["console_enabled"], 10,
               "console_enabled false")
    refused = httpx.get(info["url"])
    assert refused.status_code == 404


def test_socat_console_and_node_deleted_while_connected(
        stack: Stack, sol: tuple[SolBmc, SerialLine]) -> None:
    bmc, line = sol
    terminal_port = free_port()
    uuid = enroll(stack.api, "ipmi", bmc.driver_info(ipmi_terminal_port=terminal_port),
                  "ipmitool-socat")
    info = enabled_console(stack.api, uuid)["console_info"]
    assert info == {"type": "socat", "url": f"tcp://127.0.0.1:{terminal_port}"}
    host, port = info["url"].removeprefix("tcp://").rsplit(":", 1)
    client = socket.create_connection((host, int(port)), timeout=10)
    line.send(b"boot output\r\n")
    seen = b""
    while b"boot output" not in seen:
        seen += client.recv(4096)
    client.sendall(b"typed over tcp\r")
    eventually(lambda: b"typed over tcp" in line.received(), 10, "TCP bytes on the line")

    # The node deleted while a client is connected: the client is told why and cut off.
    assert stack.api.delete(f"/v1/nodes/{uuid}").status_code == 204
    rest = b""
    while chunk := client.recv(4096):
        rest += chunk
    assert b"[console closed: the node was deleted]" in rest
    client.close()
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2)


def test_deleted_node_closes_its_websocket_with_the_reason(stack: Stack) -> None:
    uuid = enroll(stack.api, "fake-hardware", {}, "fake")
    info = enabled_console(stack.api, uuid)["console_info"]
    assert info["type"] == "fake"
    ws = websocket.create_connection(ws_url(info), timeout=10)
    assert f"fake console of node {uuid}".encode() in received_until(ws, b"\n")
    ws.send("echo me")
    assert b"echo me" in received_until(ws, b"echo me")
    assert stack.api.delete(f"/v1/nodes/{uuid}").status_code == 204
    assert close_frame(ws) == (1000, b"the node was deleted")


def test_wrong_token_is_refused(stack: Stack) -> None:
    uuid = enroll(stack.api, "fake-hardware", {}, "fake")
    info = enabled_console(stack.api, uuid)["console_info"]
    forged = ws_url(info).split("token=")[0] + "token=forged"
    with pytest.raises(websocket.WebSocketException):
        ws = websocket.create_connection(forged, timeout=10)
        ws.recv()
    assert httpx.get(info["url"].split("token=")[0] + "token=forged").status_code == 404


def test_unreachable_bmc_leaves_the_console_disabled_with_the_reason(stack: Stack) -> None:
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))  # a UDP port nobody answers on
    uuid = enroll(stack.api, "ipmi", {"ipmi_address": "127.0.0.1",
                                      "ipmi_port": dead.getsockname()[1],
                                      "ipmi_username": "admin", "ipmi_password": "secret-9"},
                  "ipmitool-socat")
    assert stack.api.put(f"/v1/nodes/{uuid}/states/console",
                         json={"enabled": True}).status_code == 202
    node = eventually(lambda: (n := stack.api.get(f"/v1/nodes/{uuid}").json())["last_error"]
                      and n, 20, "the failure recorded")
    dead.close()
    assert node["console_enabled"] is False
    assert node["last_error"].startswith(f"Error enabling the console on node {uuid}.")
    assert "secret-9" not in node["last_error"]
    assert stack.api.get(f"/v1/nodes/{uuid}/states/console").json() == {
        "console_enabled": False, "console_info": None}


def test_a_bmc_that_goes_away_ends_the_console_with_the_reason(
        stack: Stack, sol: tuple[SolBmc, SerialLine]) -> None:
    """The conductor asks the BMC every 5 s whether the SOL payload is still there; pyghmi
    gives up on one that does not answer after its retries (~10 s, measured), the conductor
    after 20 s of silence in any case."""
    bmc, _line = sol
    uuid = enroll(stack.api, "ipmi", bmc.driver_info(), "ipmitool-shellinabox")
    info = enabled_console(stack.api, uuid)["console_info"]
    ws = websocket.create_connection(ws_url(info), timeout=10)
    bmc.stop()
    node = eventually(lambda: (n := stack.api.get(f"/v1/nodes/{uuid}").json())["last_error"]
                      and n, 60, "the console's loss recorded")
    assert node["console_enabled"] is False
    assert node["last_error"].startswith(f"The console of node {uuid} was lost: IPMI SOL at ")
    code, reason = close_frame(ws)
    assert code == 1000 and reason.startswith(b"IPMI SOL at 127.0.0.1:")


def test_no_console_and_bad_bodies_are_refused(stack: Stack) -> None:
    uuid = enroll(stack.api, "fake-hardware", {}, "no-console")
    refused = stack.api.put(f"/v1/nodes/{uuid}/states/console", json={"enabled": True})
    assert refused.status_code == 400
    assert "does not support consoles" in refused.text
    assert stack.api.put(f"/v1/nodes/{uuid}/states/console",
                         json={"enabled": "maybe"}).status_code == 400
    assert stack.api.put(f"/v1/nodes/{uuid}/states/console", json={}).status_code == 400


def test_ipmitool_sol_activate_against_the_emulator(sol: tuple[SolBmc, SerialLine]) -> None:
    """ipmitool on a pseudo-terminal (it wants a tty, and buffers a pipe's output)."""
    bmc, line = sol
    master, slave = pty.openpty()
    ipmitool = subprocess.Popen(
        ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(bmc.port),
         "-U", "admin", "-P", bmc.password, "sol", "activate"],
        stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    shown = bytearray()

    def shows(marker: bytes) -> bool:
        if select.select([master], [], [], 0.1)[0]:
            with contextlib.suppress(OSError):
                shown.extend(os.read(master, 4096))
        return marker in shown

    try:
        eventually(lambda: shows(b"SOL Session operational"), 10, "ipmitool's SOL session")
        line.send(b"from the machine\r\n")
        eventually(lambda: shows(b"from the machine"), 10, "the line's output in ipmitool")
        os.write(master, b"typed in ipmitool\r")
        eventually(lambda: b"typed in ipmitool" in line.received(), 10, "ipmitool's bytes")
    finally:
        ipmitool.kill()
        ipmitool.wait()
        os.close(master)


def test_a_restarted_conductor_opens_the_enabled_consoles_again(tmp_path: Path) -> None:
    """As Ironic's conductor does at start: console_enabled nodes get their console back
    (a new token: the old URL stops working)."""
    settings = Settings(process={"data_dir": tmp_path},
                        conductor={"hostname": "conductor-restart"})

    def started() -> Any:
        sock = bound_socket()
        served = Settings(**{**settings.model_dump(), "api": {"port": sock.getsockname()[1]}})
        return serving(build(served), sock=sock)

    with started() as url, httpx.Client(base_url=url, timeout=15, headers=HEADERS) as api:
        uuid = enroll(api, "fake-hardware", {}, "fake")
        before = enabled_console(api, uuid)["console_info"]
    with started() as url, httpx.Client(base_url=url, timeout=15, headers=HEADERS) as api:
        after = eventually(lambda: api.get(f"/v1/nodes/{uuid}/states/console").json()
                           ["console_info"], 15, "the console opened again")
        assert after["url"] != before["url"]
        ws = websocket.create_connection(ws_url(after), timeout=10)
        assert f"fake console of node {uuid}".encode() in received_until(ws, b"\n")
        ws.close()


def echo_round(ws: websocket.WebSocket, line: SerialLine, label: str) -> float:
    """Seconds for a line's output to reach the web console and typed bytes to reach the line."""
    began = time.monotonic()
    line.send(f"still here {label}\r\n".encode())
    assert f"still here {label}".encode() in received_until(
        ws, f"still here {label}".encode(), timeout=ECHO_GIVE_UP_S)
    ws.send_binary(f"typed {label}\r".encode())
    eventually(lambda: f"typed {label}\r".encode() in line.received(), ECHO_GIVE_UP_S,
               f"'typed {label}' on the serial line")
    return time.monotonic() - began


def test_a_dead_bmc_does_not_stall_the_other_consoles(
        stack: Stack, tmp_path: Path, sol: tuple[SolBmc, SerialLine]) -> None:
    """Two SOL consoles of one conductor; one BMC is killed and someone types into its
    console. Until the conductor gives up on it, the other console's line goes on both ways,
    round after round, each round not much slower than that console's rounds before the kill
    and after the report, measured under the same load (the stall this guards against held
    every console of the process for the dead BMC's whole retry time, far above that)."""
    dying_bmc, _dying_line = sol
    line = SerialLine()
    try:
        with SolBmc(tmp_path / "other-bmc", line.address) as bmc:
            eventually(lambda: line.connected, 10, "ipmi_sim connecting to the serial line")
            dying = enroll(stack.api, "ipmi", dying_bmc.driver_info(), "ipmitool-shellinabox")
            alive = enroll(stack.api, "ipmi", bmc.driver_info(), "ipmitool-shellinabox")
            dying_ws = websocket.create_connection(
                ws_url(enabled_console(stack.api, dying)["console_info"]), timeout=10)
            ws = websocket.create_connection(
                ws_url(enabled_console(stack.api, alive)["console_info"]), timeout=10)
            before = [echo_round(ws, line, f"before {n}") for n in range(BASELINE_ROUNDS)]
            dying_bmc.process.kill()  # type: ignore[union-attr]
            dying_bmc.process.wait()  # type: ignore[union-attr]
            during: list[float] = []
            while not (node := stack.api.get(f"/v1/nodes/{dying}").json())["last_error"]:
                with contextlib.suppress(OSError, websocket.WebSocketException):
                    dying_ws.send_binary(b"typed into the dead one\r")  # no ack will come
                during.append(echo_round(ws, line, f"during {len(during)}"))
            assert node["last_error"].startswith(f"The console of node {dying} was lost")
            after = [echo_round(ws, line, f"after {n}") for n in range(BASELINE_ROUNDS)]
            bound = max(STALL_BOUND_S, STALL_FACTOR * max(before + after))
            assert during, "the dead console was reported before the other one was used"
            assert max(during) < bound, (
                f"a round stalled while the dead BMC was retried: {during} s (bound {bound} s; "
                f"before the kill {before} s, after the report {after} s)")
            assert stack.api.get(f"/v1/nodes/{alive}").json()["console_enabled"] is True
    finally:
        line.close()
