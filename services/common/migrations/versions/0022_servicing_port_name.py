"""API 1.85-1.92: nodes' service step (1.87, servicing) and ports' name (1.88)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added empty, then required, as clean_step and deploy_step are (MySQL has no JSON default).
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("service_step", sa.JSON(), nullable=True))
    op.execute("UPDATE nodes SET service_step = '{}'")
    with op.batch_alter_table("nodes") as batch:
        batch.alter_column("service_step", existing_type=sa.JSON(), nullable=False)
    with op.batch_alter_table("ports") as batch:
        batch.add_column(sa.Column("name", sa.String(length=255), nullable=True))
        batch.create_unique_constraint("uniq_ports0name", ["name"])


def downgrade() -> None:
    with op.batch_alter_table("ports") as batch:
        batch.drop_constraint("uniq_ports0name", type_="unique")
        batch.drop_column("name")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("service_step")
