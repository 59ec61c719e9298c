"""image_versions.size: the bytes of a version's raw disk, known once it is in the image store
(a capture records it; docs/images.md)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("image_versions") as batch:
        batch.add_column(sa.Column("size", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("image_versions") as batch:
        batch.drop_column("size")
