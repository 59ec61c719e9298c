"""`enclume-boot` as a real process inside a namespace host: the provisioning network's DHCP,
TFTP and HTTP, configured only through ENCLUME_* variables."""

from __future__ import annotations

import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.lab.harness.netns import TAP_NAME, NetnsHost
from tests.lab.harness.processes import LabError, ManagedProcess, tail, wait_until

HTTP_PORT = 8080
READY_TIMEOUT_S = 60.0
# The first and last host addresses leased to machines (the server has the first of the net).
LEASE_RANGE = (100, 200)


@dataclass
class BootService:
    host: NetnsHost
    process: ManagedProcess
    url: str  # base URL of its HTTP server, as machines reach it
    files_dir: Path  # served at <url>/files/

    def file_url(self, name: str) -> str:
        return f"{self.url}/files/{name}"

    def get(self, path: str) -> str | None:
        """GET <url><path> from the service's own namespace (None unless 200)."""
        return self.host.http_get(self.url + path)


def enclume_boot_binary() -> Path:
    binary = Path(sys.executable).parent / "enclume-boot"
    if not binary.exists():
        raise LabError(f"{binary} is missing: install the project (`make venv`)")
    return binary


def start_boot_service(host: NetnsHost, workdir: Path, database_url: str,
                       extra_env: dict[str, str] | None = None) -> BootService:
    """Start enclume-boot in `host` serving full DHCP on its tap interface; wait for /health.

    dnsmasq runs as root here: pytest's temporary directories are private to root (0700), so
    dnsmasq could not read its host files after dropping to "nobody".
    """
    network = host.interface.network
    first, last = (network.network_address + offset for offset in LEASE_RANGE)
    files_dir = workdir / "boot-files"
    files_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://{host.ipv4}:{HTTP_PORT}"
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("ENCLUME_")}  # only the settings below count
    env.update({
        "ENCLUME_DATA_DIR": str(workdir / "data"),
        "ENCLUME_DATABASE_URL": database_url,
        "ENCLUME_LOG_LEVEL": "DEBUG",
        "ENCLUME_BOOT_INTERFACE": TAP_NAME,
        "ENCLUME_BOOT_HTTP_HOST": host.ipv4,
        "ENCLUME_BOOT_HTTP_PORT": str(HTTP_PORT),
        "ENCLUME_BOOT_FILES_DIR": str(files_dir),
        "ENCLUME_TFTP_HOST": host.ipv4,
        "ENCLUME_BOOT_DHCP_MODE": "full",
        "ENCLUME_BOOT_DHCP_RANGE_START": str(ipaddress.IPv4Address(first)),
        "ENCLUME_BOOT_DHCP_RANGE_END": str(ipaddress.IPv4Address(last)),
        "ENCLUME_BOOT_DHCP_NO_PING": "true",
        "ENCLUME_BOOT_DNSMASQ_USER": "root",
        **(extra_env or {}),
    })
    process = host.run([str(enclume_boot_binary())], "enclume-boot", env=env, inherit_env=False)
    service = BootService(host, process, url, files_dir)

    def healthy() -> bool:
        process.check_alive()
        return service.get("/health") is not None

    wait_until(healthy, READY_TIMEOUT_S, "enclume-boot's /health", interval=0.3,
               on_timeout=lambda: f"its log ends with:\n{tail(process.log_path, 40)}")
    return service
