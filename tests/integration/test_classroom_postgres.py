"""The classroom API's tests (tests/unit/test_classroom_api.py, and the session changes of
tests/unit/test_session_changes.py) on PostgreSQL: row locks, ON CONFLICT, time zones and
constraints as the cluster's database has them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.local_postgres import postgres_bin, running_postgres_urls
from tests.unit.test_classroom_api import *  # noqa: F403 - the same tests, collected here
from tests.unit.test_classroom_api import admin, stack, world  # noqa: F401 - their fixtures
from tests.unit.test_session_changes import *  # noqa: F403 - the same tests, collected here

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed")]


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with running_postgres_urls("classroom") as (tcp_url, _socket_url):
        yield tcp_url
