"""API 1.74 and later: nodes' boot mode and secure boot (1.75), shard (1.82), parent node
(1.83); runbooks (1.92) and inspection rules (1.96)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("boot_mode", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("secure_boot", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("shard", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("parent_node", sa.String(length=36), nullable=True))
        batch.create_index("ix_nodes_shard", ["shard"])
        batch.create_index("ix_nodes_parent_node", ["parent_node"])
    op.create_table(
        "runbooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("disable_ramdisk", sa.Boolean(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "inspection_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index("ix_inspection_rules_phase", "inspection_rules", ["phase"])


def downgrade() -> None:
    op.drop_index("ix_inspection_rules_phase", table_name="inspection_rules")
    op.drop_table("inspection_rules")
    op.drop_table("runbooks")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_index("ix_nodes_parent_node")
        batch.drop_index("ix_nodes_shard")
        batch.drop_column("parent_node")
        batch.drop_column("shard")
        batch.drop_column("secure_boot")
        batch.drop_column("boot_mode")
