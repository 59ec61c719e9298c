"""``enclume-aio``: API and conductor in one process, on SQLite in ENCLUME_DATA_DIR, and the
boot service as its child process when ENCLUME_BOOT_INTERFACE is set (services/boot/child.py).

With no configuration it serves http://127.0.0.1:6385 with noauth.
"""

from __future__ import annotations

import sys

from fastapi import FastAPI

from services.api.app import create_app
from services.api.serve import serve
from services.boot.child import BootChild
from services.common.config import Settings, get_settings
from services.common.db import open_database
from services.common.lifecycle import Service, StartedFirst
from services.common.membership import Membership
from services.conductor.console_web import console_routes
from services.conductor.manager import ConductorManager
from services.conductor.periodic import PeriodicTasks
from services.drivers.registry import Drivers


def build(settings: Settings) -> FastAPI:
    """The API app with a conductor (and its periodic tasks) in the same process."""
    db = open_database(settings)
    drivers = Drivers(settings)
    membership = Membership(db, settings)
    manager = ConductorManager(db, settings, drivers, membership)
    services: list[Service] = [manager, PeriodicTasks(manager)]
    boot = StartedFirst([BootChild(settings)] if settings.boot.interface else [])
    app = create_app(settings, db, manager, membership, services=[*services, boot])
    # The web consoles are the conductor's (it holds the SOL sessions); here they share the
    # API's port. Their token is their authentication (the API's auth passes websockets and
    # /console/ by).
    app.router.routes.extend(console_routes(manager.consoles))
    app.state.started_first = boot  # started by `serve` before the API serves
    return app


def main() -> None:
    sys.exit(serve(build, get_settings()))
