"""volume connectors and targets (Ironic API 1.32)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _common(*columns: sa.Column[Any], unique: sa.UniqueConstraint) -> tuple[Any, ...]:
    return (
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        *columns,
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
        unique,
    )


def upgrade() -> None:
    op.create_table(
        "volume_connectors",
        *_common(sa.Column("type", sa.String(length=32), nullable=False),
                 sa.Column("connector_id", sa.String(length=255), nullable=False),
                 unique=sa.UniqueConstraint("type", "connector_id",
                                            name="uniq_volumeconnectors0type0connector_id")),
    )
    op.create_index("ix_volume_connectors_node_id", "volume_connectors", ["node_id"])
    op.create_table(
        "volume_targets",
        *_common(sa.Column("volume_type", sa.String(length=64), nullable=False),
                 sa.Column("properties", sa.JSON(), nullable=False),
                 sa.Column("boot_index", sa.Integer(), nullable=False),
                 sa.Column("volume_id", sa.String(length=36), nullable=False),
                 unique=sa.UniqueConstraint("node_id", "boot_index",
                                            name="uniq_volumetargets0node_id0boot_index")),
    )
    op.create_index("ix_volume_targets_node_id", "volume_targets", ["node_id"])


def downgrade() -> None:
    op.drop_index("ix_volume_targets_node_id", table_name="volume_targets")
    op.drop_table("volume_targets")
    op.drop_index("ix_volume_connectors_node_id", table_name="volume_connectors")
    op.drop_table("volume_connectors")
