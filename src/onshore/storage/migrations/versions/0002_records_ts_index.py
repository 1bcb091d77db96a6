"""An index on records.ts_ms, for time ranges (queries, retention, border selection).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_records_ts_ms", "records", ["ts_ms"])


def downgrade() -> None:
    op.drop_index("ix_records_ts_ms", table_name="records")
