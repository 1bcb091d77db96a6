"""The gateway a vehicle is registered to: ``vehicles.gateway``.

A gateway (a fleet back-end, a fleet-telemetry server, a TSP) speaks for the vehicles registered to it; a record
a gateway sends for a vehicle is admitted only when this column names that gateway. NULL: no gateway speaks for
the vehicle (it sends with its own token only). The index serves ``onshore vehicle list --gateway NAME``.

Revision ID: 0008
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vehicles") as batch:
        batch.add_column(
            sa.Column("gateway", sa.String(64), nullable=True, comment="the gateway that speaks for the vehicle")
        )
    op.create_index("ix_vehicles_gateway", "vehicles", ["gateway"])


def downgrade() -> None:
    op.drop_index("ix_vehicles_gateway", table_name="vehicles")
    with op.batch_alter_table("vehicles") as batch:
        batch.drop_column("gateway")
