"""classroom: why an occurrence was missed or skipped; when a job first ended

``occurrences.reason`` says why an occurrence was recorded missed (or its job or "after" action
skipped); ``jobs.finished_at`` is when a job first reached an end state (a PC retried later does
not move it), so that a room's restore durations give the timetable its lead time.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("occurrences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("finished_at")
    with op.batch_alter_table("occurrences", schema=None) as batch_op:
        batch_op.drop_column("reason")
