"""a room's logins at the PCs' boot prompt and their language (#20): rooms.pc_logins,
rooms.login_language (null: the settings decide)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pc_logins", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("login_language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_column("login_language")
        batch_op.drop_column("pc_logins")
