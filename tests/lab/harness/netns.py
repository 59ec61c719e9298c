"""A host of the lab: a network namespace whose tap interface is plugged into a switch port."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.lab.harness.processes import LabError, ManagedProcess, require_tool
from tests.lab.harness.vde import VdeSwitch

TAP_NAME = "tap0"
COMMAND_TIMEOUT_S = 30.0
HTTP_GET_SCRIPT = """
import ssl, sys, urllib.request
context = ssl.create_default_context(cafile=sys.argv[3] or None)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                     urllib.request.HTTPSHandler(context=context))
with opener.open(sys.argv[1], timeout=float(sys.argv[2])) as answer:
    sys.stdout.write(answer.read().decode())
"""
# Any method, JSON in and out; prints {"status": ..., "body": ...} whatever the status.
HTTP_REQUEST_SCRIPT = """
import json, sys, urllib.error, urllib.request
method, url, timeout, body, headers = sys.argv[1], sys.argv[2], float(sys.argv[3]), \\
    sys.argv[4], json.loads(sys.argv[5])
data = body.encode() if body else None
if data is not None:
    headers.setdefault("Content-Type", "application/json")
request = urllib.request.Request(url, data=data, method=method, headers=headers)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(request, timeout=timeout) as answer:
        status, raw = answer.status, answer.read()
except urllib.error.HTTPError as error:
    status, raw = error.code, error.read()
try:
    parsed = json.loads(raw) if raw else None
except ValueError:
    parsed = raw.decode(errors="replace")
sys.stdout.write(json.dumps({"status": status, "body": parsed}))
"""


def unique_netns_name(role: str) -> str:
    """Namespace names are global to the machine: include the PID and a random suffix."""
    return f"enclab-{role[:8]}-{os.getpid()}-{secrets.token_hex(2)}"


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False,
                          timeout=COMMAND_TIMEOUT_S)
    if done.returncode != 0:
        raise LabError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")


class NetnsHost:
    """A namespace `name` with `tap0` on `port` of `switch`, addressed `ipv4` (and `ipv6`).

    The tap is created first (persistent, so it exists before the plug) and plugged with
    `vde_plug2tap` running in the foreground as a process of the lab. The IPv6 address lets a
    DHCP server there send router advertisements (iPXE waits ~13 s for IPv6 without them).
    """

    def __init__(self, role: str, workdir: Path, switch: VdeSwitch, port: int,
                 ipv4: str, ipv6: str | None = None) -> None:
        require_tool("ip")
        require_tool("vde_plug2tap")
        self.name = unique_netns_name(role)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.switch = switch
        self.port = port
        self.interface = ipaddress.ip_interface(ipv4)
        self.interface6 = ipaddress.ip_interface(ipv6) if ipv6 else None
        self._processes: list[ManagedProcess] = []
        _ip("netns", "add", self.name)
        try:
            self._plug_in()
        except BaseException:
            self.close()
            raise

    @property
    def ipv4(self) -> str:
        return str(self.interface.ip)

    @property
    def ipv6(self) -> str | None:
        return str(self.interface6.ip) if self.interface6 else None

    def _plug_in(self) -> None:
        _ip("-n", self.name, "link", "set", "lo", "up")
        _ip("-n", self.name, "tuntap", "add", "dev", TAP_NAME, "mode", "tap")
        _ip("-n", self.name, "addr", "add", str(self.interface), "dev", TAP_NAME)
        if self.interface6 is not None:
            _ip("-n", self.name, "addr", "add", str(self.interface6), "dev", TAP_NAME, "nodad")
        _ip("-n", self.name, "link", "set", TAP_NAME, "up")
        self.run(["vde_plug2tap", "--sock", str(self.switch.socket_dir),
                  "--port", str(self.port), TAP_NAME], "vde_plug2tap")
        self.switch.wait_port_active(self.port)

    def run(self, args: list[str], name: str, env: dict[str, str] | None = None,
            inherit_env: bool = True) -> ManagedProcess:
        """Start `args` inside the namespace; it is stopped when the host closes.

        `ip netns exec` execs the command, so the tracked PID is the command's own.
        """
        process = ManagedProcess(name, ["ip", "netns", "exec", self.name, *args],
                                 self.workdir / f"{name}.log", env=env, inherit_env=inherit_env)
        self._processes.append(process)
        return process

    def execute(self, args: list[str], timeout: float = COMMAND_TIMEOUT_S,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a short command inside the namespace and wait for it."""
        done = subprocess.run(["ip", "netns", "exec", self.name, *args], capture_output=True,
                              text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise LabError(f"{' '.join(args)} in {self.name} failed ({done.returncode}): "
                           f"{done.stderr.strip() or done.stdout.strip()}")
        return done

    def pings(self, address: str, count: int = 1, timeout_s: int = 1) -> bool:
        """Whether `address` answers ICMP echo (busybox's ping: iputils is not a lab package)."""
        done = self.execute([require_tool("busybox"), "ping", "-q", "-c", str(count),
                             "-W", str(timeout_s), address], check=False)
        return done.returncode == 0

    def http_get(self, url: str, timeout_s: float = 5.0, ca_file: Path | None = None
                 ) -> str | None:
        """The body of `url` fetched from inside the namespace, or None when the request fails or
        the answer is not 200 (https: checked against `ca_file`). (Python's urllib, no proxy:
        Debian's static busybox wget segfaults here.)"""
        done = self.execute([sys.executable, "-c", HTTP_GET_SCRIPT, url, str(timeout_s),
                             str(ca_file or "")],
                            timeout=timeout_s + COMMAND_TIMEOUT_S, check=False)
        return done.stdout if done.returncode == 0 else None

    def http_request(self, method: str, url: str, body: Any = None,
                     headers: dict[str, str] | None = None,
                     timeout_s: float = 10.0) -> tuple[int, Any]:
        """(status, JSON body or text) of a request made from inside the namespace; LabError
        when no answer came at all (connection refused, timeout)."""
        payload = "" if body is None else json.dumps(body)
        done = self.execute([sys.executable, "-c", HTTP_REQUEST_SCRIPT, method, url,
                             str(timeout_s), payload, json.dumps(headers or {})],
                            timeout=timeout_s + COMMAND_TIMEOUT_S, check=False)
        if done.returncode != 0:
            raise LabError(f"{method} {url} from {self.name} got no answer: "
                           f"{done.stderr.strip().splitlines()[-1:]}")
        answer = json.loads(done.stdout)
        return int(answer["status"]), answer["body"]

    def close(self) -> None:
        """Stop the host's processes (newest first), then delete the namespace."""
        errors: list[str] = []
        for process in reversed(self._processes):
            try:
                process.stop()
            except Exception as exc:  # keep cleaning up; report at the end
                errors.append(f"{process.name}: {exc}")
        self._processes.clear()
        try:
            _ip("netns", "delete", self.name)
        except LabError as exc:
            if "No such file" not in str(exc):
                errors.append(str(exc))
        if errors:
            raise LabError(f"cleaning up {self.name}: " + "; ".join(errors))
