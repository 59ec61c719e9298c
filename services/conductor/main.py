"""``enclume-conductor``: a conductor process. Registers itself, heartbeats, serves RPC from
the API services, and works on the nodes the hash ring gives it."""

from __future__ import annotations

import logging
import sys

import uvicorn

from services.common.config import get_settings
from services.common.db import open_database
from services.common.logs import setup as setup_logging
from services.common.membership import Membership
from services.common.uvicorn_options import uvicorn_options
from services.conductor.console_web import console_routes
from services.conductor.manager import ConductorManager
from services.conductor.periodic import PeriodicTasks
from services.conductor.rpc import server_app
from services.drivers.registry import Drivers

LOG = logging.getLogger("enclume.conductor")


def main() -> None:
    settings = get_settings()
    setup_logging(settings.process.log_level)
    secret = settings.rpc_shared_secret()
    if not secret:
        LOG.error("refusing to start: set ENCLUME_RPC_SECRET or ENCLUME_RPC_SECRET_FILE")
        sys.exit(2)
    db = open_database(settings)
    drivers = Drivers(settings)
    manager = ConductorManager(db, settings, drivers, Membership(db, settings),
                               rpc_address=settings.effective_rpc_address)
    app = server_app(manager, secret, services=[manager, PeriodicTasks(manager)],
                     routes=console_routes(manager.consoles))
    LOG.info("conductor %s (group %r) serving RPC on %s", manager.host,
             settings.conductor.group, settings.effective_rpc_address)
    uvicorn.run(app, host=settings.rpc.host, port=settings.rpc.port,
                **uvicorn_options(settings.process, access_log=False))


def dbsync() -> None:
    """``enclume-dbsync``: bring the database of the settings to the newest schema."""
    settings = get_settings()
    setup_logging(settings.process.log_level)
    open_database(settings)
    LOG.info("database %s is at the newest schema", settings.effective_database_url
             .split("@")[-1])
