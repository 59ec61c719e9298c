"""nodes.updated_at and ports.updated_at indexes: the boot service's cheap change detection

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_nodes_updated_at", "nodes", ["updated_at"])
    op.create_index("ix_ports_updated_at", "ports", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_ports_updated_at", table_name="ports")
    op.drop_index("ix_nodes_updated_at", table_name="nodes")
