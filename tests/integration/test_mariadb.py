"""What MariaDB does differently from PostgreSQL and SQLite, on a real server the test starts
(lab/local_mariadb.py, once for the module): time columns keep microseconds (the migration
*_mariadb_datetime_precision.py), and a real InnoDB deadlock is a transient error that
`retrying_transient` gets past. The cluster test (test_cluster.py), the classroom API
(test_classroom_mariadb.py) and the boot service (test_dhcp.py) run on it too."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from datetime import datetime

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, select, text, update

from lab.local_mariadb import mariadb_installed, running_mariadb
from services.common.db import MIGRATIONS, Database, upgrade_schema
from services.common.models import Node
from services.common.transient import TransientDatabaseError, retrying_transient

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not mariadb_installed(), reason="MariaDB is not installed"),
              pytest.mark.skipif(importlib.util.find_spec("pymysql") is None,
                                 reason="PyMySQL is not installed (the test extra)")]

TIME_PRECISIONS = text("SELECT DISTINCT datetime_precision FROM information_schema.columns "
                       "WHERE table_schema = DATABASE() AND data_type = 'datetime'")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_mariadb("behaviour") as database_url:
        upgrade_schema(database_url)
        yield database_url


@pytest.fixture
def db(url: str) -> Iterator[Database]:
    database = Database(url)
    yield database
    database.engine.dispose()


def time_precisions(url: str) -> set[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(TIME_PRECISIONS))
    finally:
        engine.dispose()


def test_time_columns_keep_microseconds(url: str, db: Database) -> None:
    assert time_precisions(url) == {6}
    lease_end = datetime(2026, 12, 5, 14, 0, 1, 234567)
    with db.session() as session:
        node = Node(driver="fake-hardware", reservation="c1", reservation_expires_at=lease_end)
        session.add(node)
    with db.session() as session:
        stored = session.scalar(select(Node.reservation_expires_at).where(Node.id == node.id))
    assert stored == lease_end


def test_the_precision_migration_sets_it_and_takes_it_back(url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes.update(configure_logger=False, url_given=True)
    precision = next(script for script in ScriptDirectory.from_config(config).walk_revisions()
                     if (script.path or "").endswith("_mariadb_datetime_precision.py"))
    command.downgrade(config, str(precision.down_revision))  # whatever its number
    assert time_precisions(url) == {0}
    upgrade_schema(url)
    assert time_precisions(url) == {6}


def test_a_deadlock_is_transient_and_the_loser_gets_through_on_a_new_try(db: Database) -> None:
    with db.session() as session:
        first, second = Node(driver="fake-hardware"), Node(driver="fake-hardware")
        session.add_all([first, second])
    both_hold_one = threading.Barrier(2, timeout=30)
    tries: list[str] = []
    failures: list[BaseException] = []

    def write_both(name: str, order: tuple[int, int]) -> None:
        def attempt() -> None:
            tries.append(name)
            with db.session() as session:
                for position, node_id in enumerate(order):
                    session.execute(update(Node).where(Node.id == node_id)
                                    .values(description=name))
                    if position == 0 and len(tries) <= 2:  # only the first tries cross
                        both_hold_one.wait()

        try:
            retrying_transient(attempt)
        except BaseException as exc:
            failures.append(exc)

    crossing = [threading.Thread(target=write_both, args=("a", (first.id, second.id))),
                threading.Thread(target=write_both, args=("b", (second.id, first.id)))]
    for thread in crossing:
        thread.start()
    for thread in crossing:
        thread.join(60)
    assert failures == []
    assert sorted(tries) in (["a", "a", "b"], ["a", "b", "b"])  # one lost once, then passed
    with db.session() as session:
        descriptions = set(session.scalars(select(Node.description).where(
            Node.id.in_([first.id, second.id]))))
    assert len(descriptions) == 1  # the winner's and the retried loser's writes, whole


def test_without_a_retry_the_loser_sees_a_transient_error(db: Database) -> None:
    with db.session() as session:
        first, second = Node(driver="fake-hardware"), Node(driver="fake-hardware")
        session.add_all([first, second])
    both_hold_one = threading.Barrier(2, timeout=30)
    outcomes: list[BaseException | None] = []

    def write_both(order: tuple[int, int]) -> None:
        try:
            with db.session() as session:
                for position, node_id in enumerate(order):
                    session.execute(update(Node).where(Node.id == node_id)
                                    .values(description="x"))
                    if position == 0:
                        both_hold_one.wait()
            outcomes.append(None)
        except BaseException as exc:
            outcomes.append(exc)

    crossing = [threading.Thread(target=write_both, args=((first.id, second.id),)),
                threading.Thread(target=write_both, args=((second.id, first.id),))]
    for thread in crossing:
        thread.start()
    for thread in crossing:
        thread.join(60)
    assert outcomes.count(None) == 1
    loser = next(o for o in outcomes if o is not None)
    assert isinstance(loser, TransientDatabaseError), repr(loser)
    assert loser.code == 503
