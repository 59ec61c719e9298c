"""A provisioning network in namespaces, and ``enclume-boot`` running on it.

Three namespaces, created and removed by ``boot_network()``:

- ``server``: the boot service's host, ``eth0`` = 10.77.0.1/24 and fd77::1/64 (the IPv6 address
  lets dnsmasq send router advertisements);
- ``client``: ``eth0``, the other end of a veth pair, where the scapy DHCP client runs;
- ``other``: a second DHCP server's host (proxy mode), ``eth0`` = 10.77.0.2/24, a macvlan on the
  server's ``eth0`` in bridge mode, so that the client's broadcasts reach both servers.

The namespaces are isolated from the root namespace (no route out), so the addresses cannot
clash with anything else on the machine. Names carry the PID and a random token.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.room_network import run
from tests.support.procfs import stop_process

IP_TIMEOUT_S = 30
INTERFACE = "eth0"
SERVER_IP = "10.77.0.1"
OTHER_IP = "10.77.0.2"
PREFIX = 24
SERVER_IP6 = "fd77::1/64"
BIN = Path(sys.executable).parent
READY_LINE = "boot service HTTP on"
STOP_TIMEOUT_S = 15


def ip(*args: str) -> str:
    """``ip ARGS``' output; RuntimeError (RoomNetworkError) with its stderr when it fails."""
    return run("ip", *args)


@dataclass(frozen=True)
class BootNetwork:
    server: str
    client: str
    other: str

    def run(self, namespace: str, *argv: str, timeout: float = 30) -> str:
        done = subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in {namespace} failed: {done.stderr.strip()}")
        return done.stdout


@contextmanager
def boot_network() -> Iterator[BootNetwork]:
    token = f"{os.getpid()}-{secrets.token_hex(3)}"
    net = BootNetwork(server=f"enclume-boot-s-{token}", client=f"enclume-boot-c-{token}",
                      other=f"enclume-boot-o-{token}")
    try:
        for namespace in (net.server, net.client, net.other):
            ip("netns", "add", namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
        ip("-n", net.server, "link", "add", INTERFACE, "type", "veth", "peer", "name", "peer0",
           "netns", net.client)
        ip("-n", net.client, "link", "set", "peer0", "name", INTERFACE)
        ip("-n", net.server, "link", "add", "mv0", "link", INTERFACE, "type", "macvlan", "mode",
           "bridge")
        ip("-n", net.server, "link", "set", "mv0", "netns", net.other)
        ip("-n", net.other, "link", "set", "mv0", "name", INTERFACE)
        # The server must not configure itself from its own router advertisements.
        net.run(net.server, "sysctl", "-qw", f"net.ipv6.conf.{INTERFACE}.accept_ra=0")
        ip("-n", net.server, "addr", "add", f"{SERVER_IP}/{PREFIX}", "dev", INTERFACE)
        ip("-n", net.server, "addr", "add", SERVER_IP6, "dev", INTERFACE, "nodad")
        ip("-n", net.other, "addr", "add", f"{OTHER_IP}/{PREFIX}", "dev", INTERFACE)
        for namespace in (net.server, net.client, net.other):
            ip("-n", namespace, "link", "set", INTERFACE, "up")
        yield net
    finally:
        for namespace in (net.other, net.client, net.server):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True,
                           timeout=IP_TIMEOUT_S)


def world_readable_dir(prefix: str) -> Path:
    """A fresh directory dnsmasq can read after dropping to ``nobody`` (pytest's are 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


class BootProcess:
    """``enclume-boot`` in the server namespace, with settings ``env``; stopped by its PID."""

    def __init__(self, net: BootNetwork, data_dir: Path, env: dict[str, str]) -> None:
        program = BIN / "enclume-boot"
        if not program.exists():
            raise RuntimeError(f"{program} is missing: install the project (`make venv`)")
        self.data_dir = data_dir
        # One log per process: a later start in the same directory must not read an earlier
        # one's lines.
        descriptor, name = tempfile.mkstemp(prefix="enclume-boot-", suffix=".log", dir=data_dir)
        os.close(descriptor)
        self.log_path = Path(name)
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith("ENCLUME_")}
        environment.update({
            "ENCLUME_DATA_DIR": str(data_dir),
            "ENCLUME_BOOT_INTERFACE": INTERFACE,
            "ENCLUME_BOOT_HTTP_HOST": SERVER_IP,
            "ENCLUME_BOOT_HTTP_PORT": "8080",
            "ENCLUME_TFTP_HOST": "0.0.0.0",
            **env,
        })
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(["ip", "netns", "exec", net.server, str(program)],
                                            env=environment, stdout=log,
                                            stderr=subprocess.STDOUT)

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'enclume.sqlite'}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_LINE in self.log() and self.dnsmasq_pid() is not None:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"enclume-boot exited ({self.process.returncode}):\n"
                                   f"{self.log()}")
            time.sleep(0.1)
        raise TimeoutError(f"enclume-boot did not get ready:\n{self.log()}")

    def dnsmasq_pid(self) -> int | None:
        pid_file = self.data_dir / "dnsmasq" / "dnsmasq.pid"
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> int:
        stop_process(self.process, STOP_TIMEOUT_S)
        return self.process.returncode
