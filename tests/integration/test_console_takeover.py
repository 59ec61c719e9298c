"""A node's enabled serial console follows the node across the hash ring (#22), as Ironic's
takeover does: real processes (one ``enclume-api``, ``enclume-conductor``s on one SQLite
database) and OpenIPMI's ipmi_sim serving Serial-over-LAN (tests/support/sol_bmc.py).

The console is opened by conductor-1 alone; conductor-2 joins and the ring gives it the node:
conductor-1 releases the console (its websocket client is told where it went) and conductor-2
opens it, taking the SOL payload over. conductor-2 is then killed (SIGKILL: its SOL session
still holds the payload) and conductor-1 opens the console again once conductor-2's heartbeat
has expired.
At each move the new owner's web console carries the serial line both ways and the node keeps
``console_enabled`` with no error (the old owner's end of the payload is not taken for a lost
console)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websocket

from lab.local_cluster import Cluster, running_cluster
from tests.integration.test_console_sol import close_frame, enabled_console, received_until, ws_url
from tests.support.api_stack import HEADERS
from tests.support.polling import eventually
from tests.support.ring_owned import uuids_owned_by
from tests.support.sol_bmc import SerialLine, SolBmc

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SETTINGS = {
    "ENCLUME_HEARTBEAT_INTERVAL_S": "1",
    "ENCLUME_HEARTBEAT_TIMEOUT_S": "4",
    "ENCLUME_RING_REFRESH_S": "0.5",
    "ENCLUME_PERIODIC_INTERVAL_S": "1",
    "ENCLUME_POWER_SYNC_INTERVAL_S": "3600",
    "ENCLUME_IPMI_TIMEOUT_S": "10",
}
BOTH = ("conductor-1", "conductor-2")
MOVE_S = 60  # a ring refresh and a periodic pass; generous for a loaded machine


def served_by(api: httpx.Client, node: str, cluster: Cluster, conductor: str
              ) -> Callable[[], dict[str, Any] | None]:
    """The node's console_info once it is served by ``conductor`` (its RPC port)."""
    prefix = f"http://127.0.0.1:{cluster.rpc_ports[conductor]}/console/{node}?token="

    def check() -> dict[str, Any] | None:
        response = api.get(f"/v1/nodes/{node}/states/console")
        if response.status_code != 200:
            return None
        info = response.json()["console_info"]
        return info if info and info["url"].startswith(prefix) else None

    return check


def carries_the_line(info: dict[str, Any], line: SerialLine, mark: str) -> websocket.WebSocket:
    """The console's websocket shows the line's output and its typing reaches the line. It
    types twice: ipmi_sim keeps the last SOL sequence number across activations and drops a
    new console's first packet when it repeats the previous console's last number (pyghmi
    starts every console at 1), so each console here ends at 2."""
    ws = websocket.create_connection(ws_url(info), timeout=30)
    line.send(f"output {mark}\r\n".encode())
    assert f"output {mark}".encode() in received_until(ws, mark.encode(), timeout=30)
    for typed in (f"typed {mark}", f"typed again {mark}"):
        ws.send_binary(f"{typed}\r".encode())
        eventually(lambda typed=typed: f"{typed}\r".encode() in line.received(), 30,
                   f"{typed!r} on the serial line")
    return ws


def test_the_console_moves_with_its_node(tmp_path: Path) -> None:
    line = SerialLine()
    database_url = f"sqlite:///{tmp_path / 'cluster.sqlite'}"
    try:
        with SolBmc(tmp_path / "bmc", line.address) as bmc, running_cluster(
                tmp_path / "cluster", database_url, conductors=1, apis=1,
                env=SETTINGS) as cluster, httpx.Client(
                    base_url=cluster.apis["api-1"].url, headers=HEADERS, timeout=30) as api:
            eventually(lambda: line.connected, 30, "ipmi_sim connecting to the serial line")
            node = next(uuids_owned_by("conductor-2", BOTH, "console"))
            created = api.post("/v1/nodes", json={
                "uuid": node, "driver": "ipmi", "driver_info": bmc.driver_info(),
                "console_interface": "ipmitool-shellinabox"})
            assert created.status_code == 201, created.text

            first = enabled_console(api, node)["console_info"]
            assert served_by(api, node, cluster, "conductor-1")()
            ws = carries_the_line(first, line, "at conductor-1")

            cluster.start_conductor("conductor-2")  # joins: the ring gives it the node
            moved = eventually(served_by(api, node, cluster, "conductor-2"), MOVE_S,
                               f"the console opened by conductor-2\n{cluster.logs()}")
            assert close_frame(ws) == (1000, b"the node's console moved to conductor "
                                             b"conductor-2")
            ws = carries_the_line(moved, line, "at conductor-2")

            cluster.kill("conductor-2")  # the payload stays held by its dead session
            ws.close()
            back = eventually(served_by(api, node, cluster, "conductor-1"), MOVE_S,
                              f"the console opened again by conductor-1\n{cluster.logs()}")
            carries_the_line(back, line, "back at conductor-1").close()
            state = api.get(f"/v1/nodes/{node}").json()
            assert (state["console_enabled"], state["last_error"]) == (True, None)
    finally:
        line.close()
