"""The API with an in-process conductor on a real database, served by uvicorn on loopback."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.api import versions
from services.api.app import create_app
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.membership import Membership
from services.conductor.manager import ConductorManager
from services.drivers.registry import Drivers
from tests.support.asgi import serving
from tests.support.settings import merged_settings

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    ca_file: Path


@dataclass
class ServedApi:
    client: httpx.Client
    manager: ConductorManager
    app: FastAPI


@contextmanager
def served_api(settings: Settings, db: Database, tls: TlsFiles | None = None
               ) -> Iterator[ServedApi]:
    """An httpx client (at the newest microversion) on the app, until the block ends; with
    ``tls`` served over https (the client trusts its CA)."""
    drivers = Drivers(settings)
    membership = Membership(db, settings)
    manager = ConductorManager(db, settings, drivers, membership)
    app = create_app(settings, db, manager, membership, services=[manager])
    files = (tls.cert_file, tls.key_file) if tls else None
    verify: Any = ssl.create_default_context(cafile=str(tls.ca_file)) if tls else True
    with serving(app, tls=files) as url, httpx.Client(base_url=url, timeout=10, headers=HEADERS,
                                                      verify=verify) as api:
        yield ServedApi(api, manager, app)


@contextmanager
def served_sqlite_api(directory: Path, **sections: Any) -> Iterator[ServedApi]:
    """``served_api`` on a new SQLite database in ``directory``, default settings but for
    ``sections`` (``redfish={...}``)."""
    url = f"sqlite:///{directory / 'api.sqlite'}"
    upgrade_schema(url)
    settings = merged_settings({"process": {"data_dir": directory},
                                "conductor": {"hostname": "conductor-1"}}, **sections)
    with served_api(settings, Database(url)) as stack:
        yield stack


@contextmanager
def served_redfish_api(directory: Path) -> Iterator[httpx.Client]:
    """``served_sqlite_api`` with its Redfish calls bounded for sushy-emulator (5 s, no
    connection retries)."""
    with served_sqlite_api(directory, redfish={"timeout_s": 5, "connect_retries": 0}) as stack:
        yield stack.client


@contextmanager
def served_at_maximum(directory: Path, maximum: tuple[int, int]) -> Iterator[ServedApi]:
    """``served_sqlite_api`` by an app made while ``MAX_VERSION`` is raised to ``maximum``
    (versions built ahead of the ones Enclume speaks); the maximum is restored after."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(versions, "MAX_VERSION", maximum)
        with served_sqlite_api(directory) as stack:
            yield stack


def at(version: str) -> dict[str, str]:
    """The headers of a request at ``version``."""
    return {"X-OpenStack-Ironic-API-Version": version}


def faultstring(response: httpx.Response) -> str:
    """The faultstring of an error answer, whatever its status."""
    return str(json.loads(response.json()["error_message"])["faultstring"])


def fault(response: httpx.Response, status: int = 400) -> str:
    """The faultstring of an answer that must have ``status``."""
    assert response.status_code == status, response.text
    return faultstring(response)


def wait_state(api: httpx.Client, node: str, state: str) -> dict[str, Any]:
    """The node's document once its provision state is ``state`` (AssertionError after 10 s)."""
    deadline = time.monotonic() + 10
    while (shown := api.get(f"/v1/nodes/{node}").json())["provision_state"] != state:
        assert time.monotonic() < deadline, shown
        time.sleep(0.02)
    return dict(shown)
