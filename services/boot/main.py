"""``enclume-boot``: the boot service of one provisioning network.

DHCP (dnsmasq, full or proxy mode) with its filter and the desired-boot watcher, TFTP for the
iPXE binaries, and the HTTP server of iPXE scripts, boot files and images. Everything is
checked and started before HTTP serves; a setting at fault stops it with a message naming it.
``GET /health`` says whether dnsmasq runs (503 while it does not).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from services.boot.dhcp import DhcpService
from services.boot.dnsmasq_config import BootConfigError
from services.boot.http import create_boot_app
from services.boot.supervisor import StartError
from services.boot.tftp import TftpService
from services.common.config import Settings, get_settings
from services.common.db import open_database
from services.common.lifecycle import StartedFirst
from services.common.logs import setup as setup_logging
from services.common.uvicorn_options import uvicorn_options

LOG = logging.getLogger("enclume.boot")
HEALTH_PATH = "/health"


def build(settings: Settings) -> tuple[Starlette, StartedFirst]:
    """The HTTP app, and the services to start before it serves."""
    db = open_database(settings)
    dhcp = DhcpService(settings, db)
    tftp = TftpService(settings)
    services = StartedFirst([tftp, dhcp])
    app = create_boot_app(settings, db, services=[services])

    def health(_request: Request) -> JSONResponse:
        state: dict[str, Any] = {**dhcp.health(), "tftp_sessions": tftp.sessions}
        return JSONResponse(state, status_code=200 if state["dnsmasq"] == "running" else 503)

    app.add_route(HEALTH_PATH, health, methods=["GET"])
    return app, services


def run(settings: Settings) -> int:
    setup_logging(settings.process.log_level)
    try:
        app, services = build(settings)
        services.start_now()
    except (BootConfigError, StartError, RuntimeError, OSError) as exc:
        LOG.error("refusing to start: %s", exc)
        return 2
    try:
        LOG.info("boot service HTTP on http://%s:%d", settings.boot.http_host,
                 settings.boot.http_port)
        uvicorn.run(app, host=settings.boot.http_host, port=settings.boot.http_port,
                    **uvicorn_options(settings.process))
    finally:
        services.stop()  # when uvicorn could not serve (its lifespan stops them otherwise)
    return 0


def main() -> None:
    sys.exit(run(get_settings()))
