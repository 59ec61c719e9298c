"""The API with an in-process conductor on a real database, served by uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from services.api.app import create_app
from services.common.config import Settings
from services.common.db import Database
from services.common.membership import Membership
from services.conductor.manager import ConductorManager
from services.drivers.registry import Drivers
from tests.support.asgi import serving

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}


@dataclass
class ServedApi:
    client: httpx.Client
    manager: ConductorManager
    app: FastAPI


@contextmanager
def served_api(settings: Settings, db: Database) -> Iterator[ServedApi]:
    """An httpx client (at the newest microversion) on the app, until the block ends."""
    drivers = Drivers(settings)
    membership = Membership(db, settings)
    manager = ConductorManager(db, settings, drivers, membership)
    app = create_app(settings, db, manager, membership, services=[manager])
    with serving(app) as url, httpx.Client(base_url=url, timeout=10, headers=HEADERS) as api:
        yield ServedApi(api, manager, app)
