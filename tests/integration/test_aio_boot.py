"""enclume-aio runs the boot service as its child when ENCLUME_BOOT_INTERFACE is set: one process
tree, same database; DHCP answered for a node the conductor prepared; everything gone when
enclume-aio ends, also by SIGKILL; a boot service that cannot start stops enclume-aio."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.boot.supervisor import stop_pid
from services.common.db import Database, upgrade_schema
from services.common.models import Node, Port
from tests.support.boot_network import (
    INTERFACE,
    SERVER_IP,
    BootNetwork,
    boot_network,
    world_readable_dir,
)
from tests.support.dhcp_client import DhcpClient
from tests.support.polling import eventually
from tests.support.procfs import children, command_line, process_alive

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
LOCAL_BOOT = {"mode": "local", "boot_mode": "bios"}
MAC = "52:54:00:a1:0b:01"


@pytest.fixture(scope="module")
def net() -> Iterator[BootNetwork]:
    with boot_network() as network:
        yield network


class Aio:
    """enclume-aio in the server namespace (``ip netns exec`` execs, so the PID is the aio's)."""

    def __init__(self, net: BootNetwork, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.log_path = data_dir / "aio.log"
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith("ENCLUME_")}
        environment.update({
            "ENCLUME_DATA_DIR": str(data_dir), "ENCLUME_LOG_LEVEL": "INFO",
            "ENCLUME_BOOT_INTERFACE": INTERFACE, "ENCLUME_BOOT_HTTP_HOST": SERVER_IP,
            "ENCLUME_BOOT_HTTP_PORT": "8080", "ENCLUME_TFTP_HOST": "0.0.0.0",
            "ENCLUME_BOOT_DHCP_MODE": "full", "ENCLUME_BOOT_DHCP_NO_PING": "true",
            "ENCLUME_BOOT_DHCP_RANGE_START": "10.77.0.100",
            "ENCLUME_BOOT_DHCP_RANGE_END": "10.77.0.200", **env})
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", net.server, str(BIN / "enclume-aio")],
                env=environment, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def boot_child(self) -> int | None:
        found = [pid for pid in children(self.process.pid) if "enclume-boot" in command_line(pid)]
        return found[0] if found else None

    def dnsmasq_pid(self) -> int | None:
        try:
            return int((self.data_dir / "dnsmasq" / "dnsmasq.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        stop_pid(self.process.pid)
        self.process.wait(timeout=15)


def add_prepared_node(database_url: str) -> None:
    """A node as the conductor leaves it before it powers the machine on."""
    upgrade_schema(database_url)
    db = Database(database_url)
    with db.session() as session:
        node = Node(driver="fake-hardware", driver_internal_info={"boot": LOCAL_BOOT})
        session.add(node)
        session.flush()
        session.add(Port(address=MAC, node_id=node.id))
    db.engine.dispose()


def test_aio_runs_the_boot_service_and_takes_it_down_even_when_killed(
        net: BootNetwork) -> None:
    data_dir = world_readable_dir("enclume-aio-boot-")
    add_prepared_node(f"sqlite:///{data_dir / 'enclume.sqlite'}")
    aio = Aio(net, data_dir)
    client = DhcpClient(net.client, INTERFACE)
    boot = dnsmasq = None
    try:
        eventually(lambda: "serving the Ironic API" in aio.log() or aio.process.poll() is not None,
                   60, "enclume-aio to serve")
        assert aio.process.poll() is None, aio.log()
        boot = aio.boot_child()
        dnsmasq = eventually(aio.dnsmasq_pid, 60, "dnsmasq's pid file")
        assert boot is not None, aio.log()
        assert "boot service ready on" in aio.log()
        offers = eventually(lambda: [r for r in client.discover(MAC, wait=0.4)
                                     if r.source == SERVER_IP], 60, "an offer for the node")
        assert offers[0].yiaddr.startswith("10.77.0."), offers

        aio.process.send_signal(signal.SIGKILL)  # no clean-up by enclume-aio itself
        aio.process.wait(timeout=10)
        eventually(lambda: not process_alive(boot) and not process_alive(dnsmasq), 20,
                   "the boot child and its dnsmasq to end after enclume-aio was killed")
    finally:
        client.close()
        for pid in (boot, dnsmasq):
            if pid is not None and process_alive(pid):
                stop_pid(pid)
        if aio.process.poll() is None:
            aio.stop()


def test_a_boot_service_that_cannot_start_stops_aio_with_its_reason(net: BootNetwork) -> None:
    data_dir = world_readable_dir("enclume-aio-boot-bad-")
    started = time.monotonic()
    aio = Aio(net, data_dir, ENCLUME_BOOT_INTERFACE="no-such-nic0")
    try:
        code = aio.process.wait(timeout=90)
    finally:
        if aio.process.poll() is None:
            aio.stop()
    log = aio.log()
    assert code == 2, log
    assert "refusing to start" in log and "no-such-nic0" in log, log
    assert "serving the Ironic API" not in log
    assert time.monotonic() - started < 60
