"""conductor_hardware_interfaces: the hardware types and interfaces each conductor enables

As Ironic's table of the same name: a conductor writes its rows when it registers, and the
API lists drivers and checks node interfaces from the rows of the live conductors.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conductor_hardware_interfaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conductor_id", sa.Integer(), nullable=False),
        sa.Column("hardware_type", sa.String(length=255), nullable=False),
        sa.Column("interface_type", sa.String(length=16), nullable=False),
        sa.Column("interface_name", sa.String(length=255), nullable=False),
        sa.Column("default", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["conductor_id"], ["conductors.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conductor_id", "hardware_type", "interface_type", "interface_name",
                            name="uniq_conductorhardwareinterfaces"),
    )
    op.create_index("ix_conductor_hardware_interfaces_conductor_id",
                    "conductor_hardware_interfaces", ["conductor_id"])


def downgrade() -> None:
    op.drop_index("ix_conductor_hardware_interfaces_conductor_id",
                  "conductor_hardware_interfaces")
    op.drop_table("conductor_hardware_interfaces")
