"""Drop ``ix_records_ts_ms``: ``ix_records_category_ts`` serves time ranges on their own.

A time range without a category filter is asked as ``category_bits IN (every mask) AND ts_ms ...``
(``storage.predicates.RecordFilter``), which both databases answer from ``(category_bits, ts_ms)``, one index
probe per mask. One index fewer to maintain on every insert (the ingest hot path).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_records_ts_ms", table_name="records")


def downgrade() -> None:
    op.create_index("ix_records_ts_ms", "records", ["ts_ms"])
