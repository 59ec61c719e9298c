"""Transient database errors (deadlock, lock wait, serialization failure): recognised on every
database, retried by `retrying_transient`, and answered 503 with Retry-After by the API and
across the conductor's RPC, never 500. The real MariaDB deadlock is in
tests/integration/test_mariadb.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg.errors
import pymysql.err
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError

from services.api import errors
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.exceptions import EnclumeError
from services.common.transient import TransientDatabaseError, is_transient, retrying_transient
from services.conductor.rpc import server_app
from tests.support.asgi import serving
from tests.unit.test_rpc_client import SECRET, client_routing_to


def mariadb_error(code: int, text: str) -> OperationalError:
    return OperationalError("UPDATE nodes", {}, pymysql.err.OperationalError(code, text))


DEADLOCK = (1213, "Deadlock found when trying to get lock; try restarting transaction")
LOCK_WAIT = (1205, "Lock wait timeout exceeded; try restarting transaction")


@pytest.mark.parametrize("error", [
    mariadb_error(*DEADLOCK),
    mariadb_error(*LOCK_WAIT),
    OperationalError("UPDATE nodes", {}, psycopg.errors.DeadlockDetected("deadlock detected")),
    OperationalError("UPDATE nodes", {}, psycopg.errors.SerializationFailure("could not")),
    TransientDatabaseError(),
], ids=["mariadb-deadlock", "mariadb-lock-wait", "postgres-deadlock", "postgres-serialization",
        "already-translated"])
def test_the_errors_a_database_asks_to_retry_are_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize("error", [
    IntegrityError("INSERT", {}, pymysql.err.IntegrityError(1062, "Duplicate entry")),
    mariadb_error(2013, "Lost connection to server during query"),
    OperationalError("UPDATE", {}, psycopg.errors.QueryCanceled("canceling statement")),
    ValueError("not a database error"),
], ids=["duplicate", "connection-lost", "query-canceled", "other"])
def test_other_errors_are_not(error: Exception) -> None:
    assert not is_transient(error)


def test_retrying_transient_runs_the_work_again_then_gives_up() -> None:
    tries: list[int] = []

    def deadlocks_twice() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise mariadb_error(*DEADLOCK)
        return "done"

    assert retrying_transient(deadlocks_twice) == "done" and len(tries) == 3

    def always_deadlocks() -> None:
        tries.append(1)
        raise mariadb_error(*DEADLOCK)

    tries.clear()
    with pytest.raises(OperationalError):
        retrying_transient(always_deadlocks, attempts=2)
    assert len(tries) == 2

    def fails_for_good() -> None:
        tries.append(1)
        raise mariadb_error(2013, "Lost connection to server during query")

    tries.clear()
    with pytest.raises(OperationalError):
        retrying_transient(fails_for_good)
    assert len(tries) == 1


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'transient.sqlite'}"
    upgrade_schema(url)
    return Database(url)


def test_a_unit_of_work_the_database_gave_up_is_503_with_retry_after(db: Database) -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/gave-up")
    def gave_up() -> None:
        with db.session():
            raise mariadb_error(*DEADLOCK)

    @app.get("/broken")
    def broken() -> None:
        with db.session():
            raise mariadb_error(2013, "Lost connection to server during query")

    with serving(app) as url, httpx.Client(base_url=url) as client:
        answer = client.get("/gave-up")
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "1"
        assert "nothing was changed: please retry" in answer.json()["error_message"]
        assert client.get("/broken").status_code == 500


def test_a_transient_error_in_the_conductor_crosses_rpc_as_itself(db: Database,
                                                                  tmp_path: Path) -> None:
    def do_provisioning_action(**_kwargs: Any) -> None:
        with db.session():
            raise mariadb_error(*DEADLOCK)

    conductor = SimpleNamespace(host="rpc-conductor", settings=Settings(),
                                do_provisioning_action=do_provisioning_action)
    with serving(server_app(conductor, SECRET)) as url:
        client, uuid = client_routing_to(db, tmp_path, url)
        try:
            with pytest.raises(EnclumeError) as failed:
                client.do_provisioning_action(uuid, "active", {})
        finally:
            client.close()
    assert isinstance(failed.value, TransientDatabaseError)
    assert failed.value.code == 503 and failed.value.retry_after_s == 1
