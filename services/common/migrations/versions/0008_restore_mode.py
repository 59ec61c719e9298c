"""job_pcs: how a restore wrote each PC's disk (restore_mode, fetched_bytes, image_bytes)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_pcs") as batch:
        batch.add_column(sa.Column("restore_mode", sa.String(16), nullable=True))
        batch.add_column(sa.Column("fetched_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("image_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_pcs") as batch:
        batch.drop_column("image_bytes")
        batch.drop_column("fetched_bytes")
        batch.drop_column("restore_mode")
