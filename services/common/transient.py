"""Transient database errors: the ones a database gives up a transaction with and asks the client
to run again (a deadlock, a lock wait that timed out, a serialization failure).

One policy for every database: `retrying_transient` runs a short unit of work again a few
times, and `Database.session` turns one that still fails into `TransientDatabaseError` (503
with Retry-After in the API), never a 500. The transaction was rolled back: nothing was saved.
SQLite has no such errors (its writers wait out the busy timeout instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from services.common.exceptions import TemporaryFailure
from services.common.retry import retry_while

T = TypeVar("T")
ATTEMPTS = 5
BACKOFF_S = 0.05  # grows with each attempt, randomised so the retrying writers spread out
RETRY_AFTER_S = 1

# MariaDB/MySQL error numbers: ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT.
MYSQL_ERRORS = frozenset({1213, 1205})
# PostgreSQL SQLSTATEs: serialization_failure, deadlock_detected.
SQLSTATES = frozenset({"40001", "40P01"})


class TransientDatabaseError(TemporaryFailure):
    retry_after_s = RETRY_AFTER_S

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "The database gave up this request's transaction to let "
                                    "concurrent ones pass (a deadlock or a lock wait); nothing "
                                    "was changed: please retry.")


def is_transient(exc: BaseException) -> bool:
    """True for a database error that a new try of the same transaction can get past."""
    if isinstance(exc, TransientDatabaseError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    original = exc.orig
    if getattr(original, "sqlstate", None) in SQLSTATES:  # psycopg
        return True
    code = original.args[0] if original is not None and original.args else None
    return isinstance(code, int) and code in MYSQL_ERRORS  # PyMySQL


def retrying_transient(attempt: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """``attempt()`` (one whole transaction), again while the database asks for a retry."""
    return retry_while(attempt, is_transient, attempts, BACKOFF_S)
