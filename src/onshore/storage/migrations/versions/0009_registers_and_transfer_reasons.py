"""Registers for the reports, and the reasons of every border decision.

``register_entries`` holds the entries of the registers the annual report is written from (rights requests,
incidents, complaints, domestic provision to third parties) and the processor's recorded profile: one row per
entry, its current version as JSON and the ledger index of the event that recorded it.
``border_transfers`` gains ``requester`` and ``decision`` (the decision per class with its reasons), which
``GET /v1/border/exports`` lists; rows written before this revision have neither.

Revision ID: 0009
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "register_entries",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column(
            "register",
            sa.String(32),
            nullable=False,
            comment="rights_request | incident | complaint | provision | …",
        ),
        sa.Column("day", sa.String(10), nullable=False, comment="the entry's main date (received, occurred, started)"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False, comment="the entry as JSON"),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_register_entries_register_day", "register_entries", ["region", "register", "day"])
    with op.batch_alter_table("border_transfers") as batch:
        batch.add_column(sa.Column("requester", sa.String(32), nullable=True))
        batch.add_column(
            sa.Column("decision", sa.Text(), nullable=True, comment="the decision per class with its reasons, as JSON")
        )


def downgrade() -> None:
    with op.batch_alter_table("border_transfers") as batch:
        batch.drop_column("decision")
        batch.drop_column("requester")
    op.drop_index("ix_register_entries_register_day", table_name="register_entries")
    op.drop_table("register_entries")
