"""A deploy continues at another conductor when its conductor dies while the agent writes.

A cluster of real processes (one ``enclume-api``, two ``enclume-conductor``s on one SQLite
database), the boot service's HTTP app, an IPMI BMC emulator and a machine that runs the real
agent (tests/support/deploy_lab.py). The image comes from a deliberately slow HTTP server, so
the agent is still writing when the conductor that sent ``standby.write_image`` is killed with
SIGKILL. The agent's heartbeats go to the API, which forwards them to the node's owner: first
the dead conductor (503, the agent keeps heartbeating), then, once its heartbeat has expired,
the survivor, which finds the command in the database, polls it and finishes the deploy.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.local_cluster import Cluster, running_cluster
from lab.local_service import free_port
from services.common.db import Database
from services.common.models import Node
from services.common.ring import ConductorRing
from tests.support.asgi import bound_socket, url_of
from tests.support.deploy_lab import (
    HEADERS,
    DeployLab,
    boot_service,
    disk_head,
    require_agent_python,
    write_boot_files,
)
from tests.support.peers_fixtures import IpmiPeers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONDUCTORS = ("conductor-1", "conductor-2")
HEARTBEAT_TIMEOUT_S = 3.0
SETTINGS = {
    "ENCLUME_HEARTBEAT_INTERVAL_S": "1",
    "ENCLUME_HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S),
    "ENCLUME_RING_REFRESH_S": "0.5",
    "ENCLUME_PERIODIC_INTERVAL_S": "1",
    "ENCLUME_RESERVATION_LEASE_S": "6",
    "ENCLUME_POWER_SYNC_INTERVAL_S": "3600",
    "ENCLUME_POWER_POLL_INTERVAL_S": "0.1",
    "ENCLUME_RPC_TIMEOUT_S": "10",
    "ENCLUME_RPC_RETRIES": "0",
}
SLOW_CHUNK = 256 * 1024
SLOW_PAUSE_S = 0.15  # 6 MiB in ~3.6 s


class SlowImages:
    """Serves files at ~1.7 MiB/s, so a download is still running when the test acts."""

    def __init__(self, root: Path) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                for offset in range(0, len(data), SLOW_CHUNK):
                    self.wfile.write(data[offset:offset + SLOW_CHUNK])
                    time.sleep(SLOW_PAUSE_S)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(what: str, check: Any, timeout: float, cluster: Cluster) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{cluster.logs()}")


def test_the_survivor_finishes_a_deploy_whose_conductor_died_mid_write(
        tmp_path: Path, ipmi_fleet: IpmiPeers) -> None:
    require_agent_python()
    images = write_boot_files(tmp_path / "boot-files")
    boot_socket = bound_socket()
    api_port = free_port()
    database_url = f"sqlite:///{tmp_path / 'cluster.sqlite'}"
    env = {**SETTINGS, "ENCLUME_BOOT_PUBLIC_URL": url_of(boot_socket),
           "ENCLUME_AGENT_API_URL": f"http://127.0.0.1:{api_port}"}
    slow = SlowImages(tmp_path / "boot-files")
    lab: DeployLab | None = None
    try:
        with running_cluster(tmp_path / "cluster", database_url, conductors=len(CONDUCTORS),
                             apis=1, env=env, api_ports=(api_port,)) as cluster, \
                boot_service(tmp_path, Database(database_url), tmp_path / "boot-files",
                             boot_socket) as boot_url, \
                httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers=HEADERS,
                             timeout=30) as api:
            lab = DeployLab(api, boot_url, Database(database_url), images)
            machine = lab.add_machine(ipmi_fleet, tmp_path / "machines", automated_clean=False)
            lab.make_available(machine)
            owner = ConductorRing(list(CONDUCTORS)).owner(machine.uuid)
            survivor = next(name for name in CONDUCTORS if name != owner)

            info = lab.image_info("raw", image_download_source="http")
            info["image_source"] = f"{slow.url}/disk.raw"
            lab.set_image(machine, **info)
            lab.provision(machine, "active")

            def writing() -> bool:
                stored = lab.stored_internal_info(machine.uuid) if lab else {}
                return stored.get("agent_command", {}).get("name") == "standby.write_image"

            wait_until("the agent to start writing", writing, 60, cluster)
            cluster.kill(owner)
            killed_at = time.monotonic()

            active = lab.settled(machine, "active", timeout=60, extra_logs=cluster.logs())
            took = time.monotonic() - killed_at
            assert active["last_error"] is None
            raw = images["raw"].read_bytes()
            assert disk_head(machine, len(raw)) == raw
            with lab.db.session() as session:
                node = session.query(Node).filter_by(uuid=machine.uuid).one()
                assert node.conductor_affinity == survivor
                assert node.reservation is None
            lab.assert_agent_forgotten(machine)
            assert took > HEARTBEAT_TIMEOUT_S / 2  # it was the survivor, after the takeover
            assert machine.hardware.agent_boots == 1  # the same agent, not a new deploy
    finally:
        if lab is not None:
            lab.close_machines()
        slow.close()
