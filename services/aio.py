"""``enclume-aio``: API and conductor in one process, on SQLite in ENCLUME_DATA_DIR, and the
boot service as its child process when ENCLUME_BOOT_INTERFACE is set (services/boot/child.py).

With no configuration it serves http://127.0.0.1:6385 with noauth.
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from fastapi import FastAPI

from services.api.app import create_app
from services.api.auth import AuthConfigError
from services.boot.child import BootChild
from services.boot.supervisor import StartError
from services.common.config import Settings, get_settings
from services.common.db import Database, upgrade_schema
from services.common.lifecycle import Service, StartedFirst
from services.common.logs import setup as setup_logging
from services.common.membership import Membership
from services.conductor.manager import ConductorManager
from services.conductor.periodic import PeriodicTasks
from services.drivers.registry import Drivers

LOG = logging.getLogger("enclume.aio")


def open_database(settings: Settings) -> Database:
    """The database of the settings, brought to the newest schema."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    upgrade_schema(url)
    return Database(url)


def build(settings: Settings) -> FastAPI:
    """The API app with a conductor (and its periodic tasks) in the same process."""
    db = open_database(settings)
    drivers = Drivers(settings)
    membership = Membership(db, settings)
    manager = ConductorManager(db, settings, drivers, membership)
    services: list[Service] = [manager, PeriodicTasks(manager)]
    boot = StartedFirst([BootChild(settings)] if settings.boot_interface else [])
    app = create_app(settings, db, manager, membership, drivers, services=[*services, boot])
    app.state.started_first = boot  # started by `serve` before the API serves
    return app


def serve(app_factory, settings: Settings) -> int:  # type: ignore[no-untyped-def]
    setup_logging(settings.log_level)
    try:
        app = app_factory(settings)
        started_first: StartedFirst | None = getattr(app.state, "started_first", None)
        if started_first is not None:
            started_first.start_now()
    except (AuthConfigError, StartError, RuntimeError) as exc:
        LOG.error("refusing to start: %s", exc)
        return 2
    LOG.info("serving the Ironic API on http://%s:%d", settings.api_host, settings.api_port)
    try:
        uvicorn.run(app, host=settings.api_host, port=settings.api_port,
                    log_level=settings.log_level.lower(), access_log=settings.access_log,
                    log_config=None)
    finally:
        if started_first is not None:
            started_first.stop()  # when uvicorn could not serve (its lifespan stops it otherwise)
    return 0


def main() -> None:
    sys.exit(serve(build, get_settings()))
