"""`enclume-aio` (API + conductor) as a real process inside a namespace host, next to the boot
service, on the same database: what machines booting the deploy ramdisk look up and heartbeat
to, and what the test drives through the Ironic API (from inside the namespace)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab.harness.boot_service import BootService
from tests.lab.harness.netns import NetnsHost
from tests.lab.harness.processes import LabError, ManagedProcess, tail, wait_until

API_PORT = 6385
READY_TIMEOUT_S = 60.0
API_VERSION_HEADER = "X-OpenStack-Ironic-API-Version"


@dataclass(frozen=True)
class ApiTls:
    """The API serves https with this certificate (valid for the address machines reach it
    at), signed by the CA in `ca_file`."""

    cert_file: Path
    key_file: Path
    ca_file: Path


@dataclass
class EnclumeAio:
    host: NetnsHost
    process: ManagedProcess
    url: str  # base URL of the API, as machines reach it

    def request(self, method: str, path: str, body: Any = None,
                version: str = "latest") -> tuple[int, Any]:
        """(status, JSON body) of an API request made from inside the namespace."""
        return self.host.http_request(method, self.url + path, body,
                                      {API_VERSION_HEADER: version})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON body of a request that must succeed (2xx); LabError otherwise."""
        status, answer = self.request(method, path, body)
        if not 200 <= status < 300:
            raise LabError(f"{method} {path} answered {status}: {answer}")
        return answer

    def node(self, ident: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("GET", f"/v1/nodes/{ident}")
        return answer

    def wait_for_provision_state(self, ident: str, wanted: str, timeout: float,
                                 failed: tuple[str, ...] = ()) -> dict[str, Any]:
        """The node once it is in `wanted`; LabError early when it lands in a `failed` state."""
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen.update(self.node(ident))
            if seen["provision_state"] in failed:
                raise LabError(f"node {ident} went to {seen['provision_state']}: "
                               f"{seen.get('last_error')}")
            return bool(seen["provision_state"] == wanted)

        wait_until(reached, timeout, f"node {ident} to reach {wanted}", interval=0.5,
                   on_timeout=lambda: f"it is {seen.get('provision_state')} "
                                      f"({seen.get('last_error')}); enclume-aio log ends with:\n"
                                      f"{tail(self.process.log_path, 30)}")
        return seen

    def log_text(self) -> str:
        return self.process.log_path.read_text(errors="replace")


def enclume_aio_binary() -> Path:
    binary = Path(sys.executable).parent / "enclume-aio"
    if not binary.exists():
        raise LabError(f"{binary} is missing: install the project (`make venv`)")
    return binary


def start_enclume_aio(host: NetnsHost, workdir: Path, database_url: str, boot: BootService,
                      extra_env: dict[str, str] | None = None,
                      tls: ApiTls | None = None) -> EnclumeAio:
    """Start enclume-aio in `host` on its provisioning address (noauth: the namespace is the
    test's own, unless `extra_env` says otherwise), machines sent to `boot`'s files; with
    `tls`, the API serves https; wait until the API answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"{'https' if tls else 'http'}://{host.ipv4}:{API_PORT}"
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("ENCLUME_")}  # only the settings below count
    env.update({
        "ENCLUME_DATA_DIR": str(workdir / "data"),
        "ENCLUME_DATABASE_URL": database_url,
        "ENCLUME_LOG_LEVEL": "INFO",
        "ENCLUME_API_HOST": host.ipv4,
        "ENCLUME_API_PORT": str(API_PORT),
        "ENCLUME_AUTH_STRATEGY": "noauth",
        "ENCLUME_ALLOW_NOAUTH_OFF_LOOPBACK": "true",
        "ENCLUME_AGENT_API_URL": url,
        "ENCLUME_BOOT_PUBLIC_URL": boot.url,
        "ENCLUME_BOOT_FILES_DIR": str(boot.files_dir),
        **({"ENCLUME_API_TLS_CERT_FILE": str(tls.cert_file),
            "ENCLUME_API_TLS_KEY_FILE": str(tls.key_file)} if tls else {}),
        **(extra_env or {}),
    })
    process = host.run([str(enclume_aio_binary())], "enclume-aio", env=env, inherit_env=False)
    aio = EnclumeAio(host, process, url)

    def answers() -> bool:
        process.check_alive()
        return host.http_get(url + "/v1", ca_file=tls.ca_file if tls else None) is not None

    wait_until(answers, READY_TIMEOUT_S, "enclume-aio's API", interval=0.3,
               on_timeout=lambda: f"its log ends with:\n{tail(process.log_path, 40)}")
    return aio
