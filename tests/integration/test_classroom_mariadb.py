"""The classroom API's tests (tests/unit/test_classroom_api.py, and the session changes of
tests/unit/test_session_changes.py) on MariaDB, Ironic's usual database: row locks, upserts,
time zones and constraints as MariaDB has them (InnoDB, utf8mb4)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from lab.local_mariadb import mariadb_installed, running_mariadb
from tests.unit.test_classroom_api import *  # noqa: F403 - the same tests, collected here
from tests.unit.test_classroom_api import admin, stack, world  # noqa: F401 - their fixtures
from tests.unit.test_session_changes import *  # noqa: F403 - the same tests, collected here

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not mariadb_installed(), reason="MariaDB is not installed"),
              pytest.mark.skipif(importlib.util.find_spec("pymysql") is None,
                                 reason="PyMySQL is not installed (the test extra)")]


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with running_mariadb("classroom") as url:
        yield url
