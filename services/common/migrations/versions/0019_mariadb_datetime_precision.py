"""MariaDB: microseconds in every time column (DATETIME(6)), as PostgreSQL and SQLite keep them

MariaDB's DATETIME keeps whole seconds: a lock's lease ended up to a second early, a conductor's
heartbeat looked up to a second older, and the boot service's change detection (max(updated_at))
missed a change made in the same second as the one before. The models render DateTime as
DATETIME(6) on MariaDB from now on (services/common/models.py); this brings the columns that
earlier migrations made to it. Nothing changes on PostgreSQL or SQLite.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _datetime_columns() -> dict[str, list[tuple[str, bool]]]:
    """{table: [(column, nullable)]} of every DATETIME column of the schema."""
    inspector = sa.inspect(op.get_bind())
    found: dict[str, list[tuple[str, bool]]] = {}
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            if isinstance(column["type"], mysql.DATETIME):
                assert column.get("default") is None, (table, column)  # MODIFY would drop it
                found.setdefault(table, []).append((column["name"], bool(column["nullable"])))
    return found


def _set_precision(fsp: int) -> None:
    """One ALTER TABLE for all the time columns of a table: InnoDB rebuilds a table once."""
    if op.get_bind().dialect.name != "mysql":
        return
    for table, columns in _datetime_columns().items():
        changes = ", ".join(f"MODIFY `{name}` DATETIME({fsp}) {'NULL' if nullable else 'NOT NULL'}"
                            for name, nullable in columns)
        op.execute(f"ALTER TABLE `{table}` {changes}")


def upgrade() -> None:
    _set_precision(6)


def downgrade() -> None:
    _set_precision(0)
