"""A room on a software switch: a vde_switch, the server's tap in the root namespace, and one
network namespace per PC with its own tap on the switch, all in one free 10.X.Y.0/24.

    with vde_room(3) as room:
        room.server_address, room.server_interface  # 10.X.Y.1 on the root side's tap
        room.pcs[0].address, room.pcs[0].exec_argv("uftpd", ...)

Every process (the switch, each vde_plug2tap) is ended by its PID and every namespace deleted on
exit, also when the block fails. Needs root, iproute2 and vde2 (LAB-NOTES: "vde_plug2tap").
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from ramdisk.buildcache import exclusive
from tests.support.netns import LOCK_FILE, _free_network, ip

SETTLE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Pc:
    namespace: str
    address: str
    interface: str = "tap0"

    def exec_argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass(frozen=True)
class Room:
    server_address: str
    server_interface: str
    pcs: list[Pc]


def _wait_for(path: Path, what: str) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not appear")
        time.sleep(0.05)


def _wait_link(interface: str, namespace: str | None) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    netns = ["-n", namespace] if namespace else []
    while ip(*netns, "link", "show", interface, check=False) == "":
        if time.monotonic() > deadline:
            raise RuntimeError(f"tap {interface} did not appear")
        time.sleep(0.05)


def _end(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


@contextmanager
def vde_room(pcs: int) -> Iterator[Room]:
    token = secrets.token_hex(3)
    with ExitStack() as cleanup, tempfile.TemporaryDirectory(prefix="vde-room-") as workdir:
        switch = Path(workdir) / "switch"
        pidfile = Path(workdir) / "switch.pid"
        subprocess.run(["vde_switch", "-d", "-s", str(switch), "-n", str(pcs + 8),
                        "-p", str(pidfile)], check=True, timeout=10)
        _wait_for(pidfile, "vde_switch's pid file")
        switch_pid = int(pidfile.read_text().strip())
        cleanup.callback(_end, switch_pid)
        plugs: list[subprocess.Popen[bytes]] = []

        def end_plugs() -> None:
            for plug in plugs:
                plug.terminate()
                with suppress(subprocess.TimeoutExpired):
                    plug.wait(5)
                if plug.poll() is None:
                    plug.kill()
                    plug.wait()
        cleanup.callback(end_plugs)
        with exclusive(LOCK_FILE):
            network = _free_network()
            server_tap = f"vr{token}"
            plugs.append(subprocess.Popen(["vde_plug2tap", "-s", str(switch), "-p", "1",
                                           server_tap]))
            _wait_link(server_tap, None)
            server = str(network.network_address + 1)
            ip("addr", "add", f"{server}/24", "dev", server_tap)
            ip("link", "set", server_tap, "up")
        room = Room(server, server_tap, [])
        for number in range(pcs):
            namespace = f"enclume-mcast-{os.getpid()}-{token}-{number}"
            ip("netns", "add", namespace)
            cleanup.callback(ip, "netns", "del", namespace, check=False)
            pc = Pc(namespace, str(network.network_address + 10 + number))
            plugs.append(subprocess.Popen(pc.exec_argv(
                "vde_plug2tap", "-s", str(switch), "-p", str(number + 2), pc.interface)))
            _wait_link(pc.interface, namespace)
            ip("-n", namespace, "addr", "add", f"{pc.address}/24", "dev", pc.interface)
            ip("-n", namespace, "link", "set", pc.interface, "up")
            ip("-n", namespace, "link", "set", "lo", "up")
            ip("-n", namespace, "route", "add", "224.0.0.0/4", "dev", pc.interface)
            room.pcs.append(pc)
        yield room
