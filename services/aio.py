"""``enclume-aio``: API and conductor in one process, on SQLite in ENCLUME_DATA_DIR.

With no configuration it serves http://127.0.0.1:6385 with noauth.
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from services.api.app import create_app
from services.api.auth import AuthConfigError
from services.common.config import Settings, get_settings
from services.common.db import Database, upgrade_schema
from services.common.logs import setup as setup_logging
from services.conductor.manager import ConductorManager
from services.drivers.registry import Drivers

LOG = logging.getLogger("enclume.aio")


def build(settings: Settings):  # type: ignore[no-untyped-def]
    """Database brought to the newest schema, drivers, conductor and the API app."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    upgrade_schema(url)
    db = Database(url)
    manager = ConductorManager(db, settings, Drivers(settings))
    return create_app(settings, db, manager)


def serve(settings: Settings) -> int:
    setup_logging(settings.log_level)
    try:
        app = build(settings)
    except AuthConfigError as exc:
        LOG.error("refusing to start: %s", exc)
        return 2
    LOG.info("serving the Ironic API on http://%s:%d", settings.api_host, settings.api_port)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port,
                log_level=settings.log_level.lower(), access_log=settings.access_log)
    return 0


def main() -> None:
    sys.exit(serve(get_settings()))
