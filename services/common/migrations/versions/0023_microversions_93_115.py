"""API 1.93 to 1.115: ports' description, vendor, category (1.97, 1.100, 1.101); port groups'
physical_network, category (1.102, 1.103); nodes' disable_power_off (1.95), instance_name
(1.104) and health (1.109); runbooks' description and traits (1.112, each runbook's name its
first trait, as Ironic's migrate_runbook_names_to_traits); node history's project (1.113),
state, target_provision_state and duration_seconds (1.115); firmware components' vendor, model
and serial_number (1.114); ports' available_for_dynamic_portgroup and port groups'
dynamic_portgroup (1.111)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("firmware_information") as batch:
        for column in ("vendor", "model", "serial_number"):
            batch.add_column(sa.Column(column, sa.String(length=255), nullable=True))
    with op.batch_alter_table("node_history") as batch:
        batch.add_column(sa.Column("project", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("state", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("target_provision_state", sa.String(length=255),
                                   nullable=True))
        batch.add_column(sa.Column("duration_seconds", sa.Integer(), nullable=True))
    with op.batch_alter_table("ports") as batch:
        batch.add_column(sa.Column("description", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("vendor", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("category", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("available_for_dynamic_portgroup", sa.Boolean(),
                                   nullable=False, server_default=sa.true()))
    with op.batch_alter_table("portgroups") as batch:
        batch.add_column(sa.Column("physical_network", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("category", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("dynamic_portgroup", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("instance_name", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("disable_power_off", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("health", sa.String(length=32), nullable=True))
        batch.create_index("ix_nodes_instance_name", ["instance_name"])
    with op.batch_alter_table("runbooks") as batch:
        batch.add_column(sa.Column("description", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("traits", sa.JSON(), nullable=False, server_default="[]"))
    runbooks = sa.table("runbooks", sa.column("id", sa.Integer()),
                        sa.column("name", sa.String()), sa.column("traits", sa.JSON()))
    connection = op.get_bind()
    for row in connection.execute(sa.select(runbooks.c.id, runbooks.c.name)).all():
        connection.execute(runbooks.update().where(runbooks.c.id == row.id)
                           .values(traits=[row.name]))


def downgrade() -> None:
    with op.batch_alter_table("firmware_information") as batch:
        for column in ("serial_number", "model", "vendor"):
            batch.drop_column(column)
    with op.batch_alter_table("node_history") as batch:
        for column in ("duration_seconds", "target_provision_state", "state", "project"):
            batch.drop_column(column)
    with op.batch_alter_table("portgroups") as batch:
        batch.drop_column("dynamic_portgroup")
        batch.drop_column("category")
        batch.drop_column("physical_network")
    with op.batch_alter_table("ports") as batch:
        batch.drop_column("available_for_dynamic_portgroup")
        batch.drop_column("category")
        batch.drop_column("vendor")
        batch.drop_column("description")
    with op.batch_alter_table("runbooks") as batch:
        batch.drop_column("traits")
        batch.drop_column("description")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_index("ix_nodes_instance_name")
        batch.drop_column("instance_name")
        batch.drop_column("disable_power_off")
        batch.drop_column("health")
