"""Rows name their batch, the batch its store event: writers of a region insert rows outside its write lock.

``store_batches`` maps a batch reference (taken before the region's write lock) to the ledger index of the batch's
store event (known only under the lock); ``records.batch_ref`` names a row's batch. Rows stored before this
revision keep their store event's index in ``records.store_idx`` (``storage.store_batches`` reads either), so the
upgrade rewrites no row: it adds a nullable column and a table.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "store_batches",
        sa.Column("batch_ref", _Id, primary_key=True, autoincrement=True),
        sa.Column("store_idx", sa.BigInteger(), nullable=True, comment="ledger index of the batch's store event"),
    )
    op.add_column(
        "records",
        sa.Column("batch_ref", sa.BigInteger(), nullable=True, comment="the batch of the row: store_batches.batch_ref"),
    )


def downgrade() -> None:
    # Rows stored since the upgrade get their store event's index back in the column older code reads.
    op.execute(
        "UPDATE records SET store_idx = (SELECT s.store_idx FROM store_batches s WHERE s.batch_ref = records.batch_ref)"
        " WHERE batch_ref IS NOT NULL"
    )
    with op.batch_alter_table("records") as batch:
        batch.drop_column("batch_ref")
    op.drop_table("store_batches")
