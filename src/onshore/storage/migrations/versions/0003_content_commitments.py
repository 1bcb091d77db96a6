"""Content commitments: each record names its store event; deleted rows leave tombstones.

``records.store_idx`` is the ledger index of the store event whose digest commits to the row (null for rows
stored before this revision: they are reported as not covered). ``record_tombstones`` keeps, for each row a
delete event removed, its store event's index and its row digest, so verification re-derives both events.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(
            sa.Column(
                "store_idx",
                sa.BigInteger(),
                nullable=True,
                comment="ledger index of the store event that stored the row",
            )
        )
    op.create_table(
        "record_tombstones",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("store_idx", sa.BigInteger(), nullable=False),
        sa.Column("delete_idx", sa.BigInteger(), nullable=False),
        sa.Column("row_digest", sa.LargeBinary(32), nullable=False),
    )
    op.create_index("ix_record_tombstones_store_idx", "record_tombstones", ["store_idx"])


def downgrade() -> None:
    op.drop_index("ix_record_tombstones_store_idx", table_name="record_tombstones")
    op.drop_table("record_tombstones")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("store_idx")
