"""portgroups and chassis (Ironic API 1.23+ and 1.1): their tables, ports.portgroup_id and
nodes.chassis_id

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chassis",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_table(
        "portgroups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=18), nullable=True),
        sa.Column("standalone_ports_supported", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.String(length=255), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("internal_info", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("address"),
    )
    op.create_index("ix_portgroups_node_id", "portgroups", ["node_id"])
    with op.batch_alter_table("ports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("portgroup_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_ports_portgroup_id", ["portgroup_id"])
        batch_op.create_foreign_key("fk_ports_portgroup_id", "portgroups", ["portgroup_id"],
                                    ["id"], ondelete="SET NULL")
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chassis_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_nodes_chassis_id", ["chassis_id"])
        batch_op.create_foreign_key("fk_nodes_chassis_id", "chassis", ["chassis_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_constraint("fk_nodes_chassis_id", type_="foreignkey")
        batch_op.drop_index("ix_nodes_chassis_id")
        batch_op.drop_column("chassis_id")
    with op.batch_alter_table("ports", schema=None) as batch_op:
        batch_op.drop_constraint("fk_ports_portgroup_id", type_="foreignkey")
        batch_op.drop_index("ix_ports_portgroup_id")
        batch_op.drop_column("portgroup_id")
    op.drop_index("ix_portgroups_node_id", "portgroups")
    op.drop_table("portgroups")
    op.drop_table("chassis")
