"""Engines and sessions. SQLite runs in WAL mode with foreign keys on; PostgreSQL as it is;
MariaDB at READ COMMITTED. A unit of work the database gave up (deadlock, lock wait) ends as
`TransientDatabaseError` (services/common/transient.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from services.common import scrubbed_fields
from services.common.config import Settings
from services.common.file_lock import exclusive
from services.common.transient import TransientDatabaseError, is_transient

# The migrations ship inside the package: found from it, whatever the working directory.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if make_url(url).get_backend_name() == "mysql":
        # MariaDB: READ COMMITTED, PostgreSQL's level, which the locking is written for; InnoDB's
        # default (REPEATABLE READ) takes gap locks that turn concurrent lock updates into
        # deadlocks.
        return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True,
                             pool_recycle=3600, isolation_level="READ COMMITTED")
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


class Database:
    """One engine and its session factory, shared by every component of a process."""

    def __init__(self, url: str) -> None:
        self.url = url
        scrubbed_fields.install()
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends normally, rolled back otherwise
        (a transient database error as `TransientDatabaseError`: 503, please retry)."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except DBAPIError as exc:
                session.rollback()
                if is_transient(exc):
                    raise TransientDatabaseError() from exc
                raise
            except BaseException:
                session.rollback()
                raise


def open_database(settings: Settings) -> Database:
    """The database of the settings, brought to the newest schema."""
    if settings.database.url is None:
        settings.process.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    upgrade_schema(url)
    return Database(url)


def upgrade_schema(url: str) -> None:
    """Bring the schema to the newest migration (the only way the schema is created).

    Safe when several services start at once: they take turns (an advisory lock on
    PostgreSQL, a named lock on MariaDB, a lock file beside a SQLite database) and the later
    ones find nothing to do.
    """
    with _migration_lock(url):
        _run_alembic_upgrade(url)


def _run_alembic_upgrade(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    config.attributes["url_given"] = True
    command.upgrade(config, "head")


MIGRATION_LOCK_ID = 0x656E636C756D65  # "enclume"


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    if url.startswith("sqlite"):
        database = make_url(url).database
        if not database or database == ":memory:":
            yield
            return
        with exclusive(f"{database}.migrate-lock"):
            yield
        return
    engine = create_engine(url, poolclass=NullPool)
    if engine.dialect.name == "mysql":  # MariaDB: a named lock, held by this connection
        take, give_back = "SELECT GET_LOCK(:name, -1)", "SELECT RELEASE_LOCK(:name)"
        key: dict[str, Any] = {"name": f"enclume-migrations-{MIGRATION_LOCK_ID}"}
    else:
        take, give_back = "SELECT pg_advisory_lock(:id)", "SELECT pg_advisory_unlock(:id)"
        key = {"id": MIGRATION_LOCK_ID}
    try:
        with engine.connect() as connection:
            connection.execute(text(take), key)
            try:
                yield
            finally:
                connection.execute(text(give_back), key)
    finally:
        engine.dispose()
