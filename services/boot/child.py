"""The boot service as a child of ``enclume-aio``: one process tree for the embedded default.

When ``ENCLUME_BOOT_INTERFACE`` is set, enclume-aio starts ``enclume-boot`` with its own
settings (same environment, same database), supervised (restarted with back-off when it dies),
and waits until its ``/health`` says ready (200: dnsmasq runs) before the API serves: a boot
service that cannot start stops enclume-aio with the boot service's own message. The child gets
SIGTERM when enclume-aio dies, even by SIGKILL, and stops its dnsmasq.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import httpx

from services.boot.supervisor import ProcessSupervisor, StartError
from services.common.config import Settings

LOG = logging.getLogger("enclume.aio.boot")
READY_POLL_S = 0.2


def health_url(settings: Settings) -> str:
    host = settings.boot.http_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.boot.http_port}/health"


class BootChild:
    """``enclume-boot`` supervised by the process that starts it (a lifecycle Service)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        program = Path(sys.executable).parent / "enclume-boot"
        env = {**os.environ, "ENCLUME_DATABASE_URL": settings.effective_database_url}
        self.supervisor = ProcessSupervisor("enclume-boot", [str(program)], LOG, env=env,
                                            die_with_parent=True, output_level=logging.INFO)

    @property
    def pid(self) -> int | None:
        return self.supervisor.pid

    def start(self) -> None:
        self.supervisor.start()
        try:
            self._wait_ready()
        except BaseException:
            self.supervisor.stop()
            raise

    def _wait_ready(self) -> None:
        url = health_url(self.settings)
        deadline = time.monotonic() + self.settings.boot.aio_ready_timeout_s
        while time.monotonic() < deadline:
            if self.supervisor.restarts or not self.supervisor.running:
                raise StartError(f"the boot service exited at start: "
                                 f"{self.supervisor.last_output()}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:  # dnsmasq runs too
                    LOG.info("boot service ready on %s", url.removesuffix("/health"))
                    return
            except httpx.HTTPError:
                pass
            time.sleep(READY_POLL_S)
        raise StartError(f"the boot service did not answer {url} within "
                         f"{self.settings.boot.aio_ready_timeout_s} s: "
                         f"{self.supervisor.last_output()}")

    def stop(self) -> None:
        self.supervisor.stop()
