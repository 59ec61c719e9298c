"""A tenant network of the lab: a namespace host with dnsmasq giving DHCP leases (itself as the
router) and a TCP listener collecting the "booted HOSTNAME UUID" reports of the test images
(ramdisk/testimages), both on the host's own address."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from pathlib import Path

from tests.lab.harness.netns import TAP_NAME, NetnsHost
from tests.lab.harness.nsenter import in_netns
from tests.lab.harness.processes import LabError, ManagedProcess, require_tool, tail, wait_until

LEASES = (100, 150)  # host numbers of the DHCP range
READ_TIMEOUT_S = 5.0
MAX_REPORT = 4096
POLL_S = 0.2


class ReportListener:
    """TCP on ADDRESS:PORT in a namespace; every connection sends one line, which is kept. The
    next report that is a key of `answers` ("booted HOSTNAME UUID") is answered with its value
    (once): "write-files" makes the test OS write files on its disk
    (ramdisk/testimages/init.sh)."""

    def __init__(self, host: NetnsHost, port: int) -> None:
        self.reports: list[tuple[float, str, str]] = []  # (monotonic time, peer address, line)
        self.answers: dict[str, str] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()

        def listen() -> socket.socket:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((host.ipv4, port))
            server.listen(16)
            server.settimeout(POLL_S)
            return server

        self._server = in_netns(host.name, listen)
        self.address, self.port = self._server.getsockname()[:2]
        self._thread = threading.Thread(target=self._accept, name="tenant-reports", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(READ_TIMEOUT_S)
                data = b""
                try:
                    while b"\n" not in data and len(data) < MAX_REPORT:
                        chunk = conn.recv(MAX_REPORT)
                        if not chunk:
                            break
                        data += chunk
                    report = data.decode(errors="replace").strip()
                    if b"\n" in data and report in self.answers:
                        conn.sendall(self.answers.pop(report).encode() + b"\n")
                except OSError:
                    pass  # a half-sent report is kept as far as it came
            line = data.decode(errors="replace").strip()
            with self._changed:
                self.reports.append((time.monotonic(), peer[0], line))
                self._changed.notify_all()

    def wait_for(self, prefix: str, timeout: float) -> tuple[float, str, str]:
        """The first report starting with `prefix`; LabError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for report in self.reports:
                    if report[2].startswith(prefix):
                        return report
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LabError(f"no report {prefix!r} within {timeout:.0f} s; "
                                   f"got {[report[2] for report in self.reports]}")
                self._changed.wait(remaining)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=POLL_S * 10)
        self._server.close()


class TenantNetwork:
    """dnsmasq (DHCP only) and a report listener on `host`; close() stops both."""

    def __init__(self, host: NetnsHost, report_port: int) -> None:
        self.host = host
        network = host.interface.network
        first, last = (ipaddress.IPv4Address(int(network.network_address) + n) for n in LEASES)
        leases = host.workdir / "dnsmasq.leases"
        # With an IPv6 address, router advertisements too: iPXE (a network-first machine
        # booting on the tenant network) otherwise waits ~13 s for IPv6 before it goes on.
        ipv6 = ([f"--dhcp-range={host.interface6.network.network_address},ra-only",
                 "--enable-ra"] if host.interface6 is not None else [])
        self.dnsmasq: ManagedProcess = host.run([
            require_tool("dnsmasq"), "--keep-in-foreground", "--conf-file=/dev/null",
            "--port=0", f"--interface={TAP_NAME}", "--bind-interfaces", "--no-ping",
            f"--dhcp-range={first},{last},{network.netmask},1h", *ipv6,
            f"--dhcp-leasefile={leases}", "--log-dhcp", "--log-facility=-", "--user=root"],
            "dnsmasq-tenant")
        self.leases_file: Path = leases
        try:
            wait_until(lambda: self._dhcp_ready(), 10.0, "the tenant dnsmasq",
                       on_timeout=lambda: tail(self.dnsmasq.log_path))
            self.reports = ReportListener(host, report_port)
        except BaseException:
            self.dnsmasq.stop()
            raise

    def _dhcp_ready(self) -> bool:
        self.dnsmasq.check_alive()
        return "DHCP, IP range" in self.dnsmasq.log_path.read_text(errors="replace")

    def close(self) -> None:
        self.reports.close()
        self.dnsmasq.stop()
