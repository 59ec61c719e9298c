from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.aio import Server, running_aio, write_htpasswd
from tests.support.peers_fixtures import (  # noqa: F401 - fixtures of the power driver peers
    ipmi_fleet,
    make_redfish_emulator,
    redfish_emulator,
    redfish_emulator_tls,
    wol_listener,
)

pytestmark = pytest.mark.integration

USERS = {"admin": "correct horse battery staple"}


@pytest.fixture(scope="module")
def aio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """enclume-aio with noauth on loopback, shared by the tests of one module."""
    with running_aio(tmp_path_factory.mktemp("aio")) as server:
        yield server


@pytest.fixture(scope="module")
def aio_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """enclume-aio with http_basic authentication against a bcrypt htpasswd file."""
    directory: Path = tmp_path_factory.mktemp("aio-basic")
    htpasswd = write_htpasswd(directory / "htpasswd", USERS)
    env = {"ENCLUME_AUTH_STRATEGY": "http_basic", "ENCLUME_HTPASSWD_FILE": str(htpasswd)}
    with running_aio(directory / "data", env=env) as server:
        yield server
