"""nodes.ring_hash: the node's position on the conductors' hash ring

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.common.ring import ring_hash

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch_op:
        batch_op.add_column(sa.Column("ring_hash", sa.BigInteger(), nullable=True))
    nodes = sa.table("nodes", sa.column("id", sa.Integer), sa.column("uuid", sa.String),
                     sa.column("ring_hash", sa.BigInteger))
    connection = op.get_bind()
    for row in connection.execute(sa.select(nodes.c.id, nodes.c.uuid)).all():
        connection.execute(nodes.update().where(nodes.c.id == row.id)
                           .values(ring_hash=ring_hash(row.uuid)))
    with op.batch_alter_table("nodes") as batch_op:
        batch_op.alter_column("ring_hash", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index("ix_nodes_group_ring_hash", ["conductor_group", "ring_hash"])


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch_op:
        batch_op.drop_index("ix_nodes_group_ring_hash")
        batch_op.drop_column("ring_hash")
