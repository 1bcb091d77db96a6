"""``processed_batches``: the batches a bus worker committed, so a redelivered message is not processed twice.

A worker consuming a NATS JetStream stream writes one row per batch (its id, when, the answer it got) in the
transaction that stores the batch's rows and ledger events. A redelivery of the same batch finds the row and is
answered from it: no second collect or store event, no counter counted twice.

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processed_batches",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("processed_ms", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False, comment="the batch's answer as JSON: counts, no personal data"),
    )
    op.create_index("ix_processed_batches_processed_ms", "processed_batches", ["processed_ms"])


def downgrade() -> None:
    op.drop_index("ix_processed_batches_processed_ms", table_name="processed_batches")
    op.drop_table("processed_batches")
