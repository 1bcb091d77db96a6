"""The record store as shipped before migrations (commit a5939de): every table onshore's ``create_all`` made.

Revision ID: 0001
Revises:

Tables and indexes are created only where missing, so ``onshore db upgrade`` also adopts a store made by the
``create_all`` of an onshore without migrations (``ledger_signing_keys`` was then made on first use).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vehicles",
        sa.Column("ref", sa.String(length=64), nullable=False, comment="region-keyed HMAC pseudonym of the VIN"),
        sa.Column("market", sa.String(length=3), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("ref"),
        sa.UniqueConstraint("token_sha256"),
        if_not_exists=True,
    )
    op.create_table(
        "records",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("vehicle_ref", sa.String(length=64), nullable=False),
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("signal", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("categories", sa.String(length=100), nullable=False),
        sa.Column("tags", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("origin", sa.String(length=3), nullable=False),
        sa.Column("zone", sa.String(length=100), nullable=True),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column(
            "subject_ref", sa.String(length=64), nullable=False, comment="the person the datum is about (pseudonym)"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vehicle_ref", "msg_id", name="uq_records_vehicle_msg"),
        if_not_exists=True,
    )
    op.create_index("ix_records_subject", "records", ["subject_ref"], if_not_exists=True)
    op.create_table(
        "subjects",
        sa.Column(
            "ref",
            sa.String(length=64),
            nullable=False,
            comment="random id of a person; never derived from personal data",
        ),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="owner | driver | passenger"),
        sa.Column("token_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("erased_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("ref"),
        sa.UniqueConstraint("token_sha256"),
        if_not_exists=True,
    )
    op.create_table(
        "bindings",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("vehicle_ref", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column(
            "profile", sa.String(length=64), nullable=True, comment="the vehicle's own driver-profile id, if any"
        ),
        sa.Column("from_ms", sa.BigInteger(), nullable=False),
        sa.Column("until_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_bindings_subject_ref", "bindings", ["subject_ref"], if_not_exists=True)
    op.create_index("ix_bindings_vehicle_ref", "bindings", ["vehicle_ref"], if_not_exists=True)
    op.create_table(
        "consents",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False, comment="ordinary | separate"),
        sa.Column("granted_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=True),
        sa.Column("withdrawn_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_consents_subject_ref", "consents", ["subject_ref"], if_not_exists=True)
    op.create_table(
        "unclassified_signals",
        sa.Column("signal", sa.String(length=200), nullable=False),
        sa.Column("first_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("batches", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("signal"),
        if_not_exists=True,
    )
    op.create_table(
        "frame_drops",
        sa.Column("day", sa.String(length=10), nullable=False, comment="UTC date, YYYY-MM-DD"),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("frames", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "reason"),
        if_not_exists=True,
    )
    # The ledger (onshore.ledger.store, onshore.ledger.service).
    op.create_table(
        "ledger_entries",
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("region", "idx"),
        sqlite_with_rowid=False,
        if_not_exists=True,
    )
    op.create_table(
        "ledger_leaves",
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("region", "idx"),
        sqlite_with_rowid=False,
        if_not_exists=True,
    )
    op.create_table(
        "ledger_nodes",
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("region", "level", "idx"),
        sqlite_with_rowid=False,
        if_not_exists=True,
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_ledger_checkpoints_region", "ledger_checkpoints", ["region"], if_not_exists=True)
    op.create_table(
        "ledger_signing_keys",
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key_name", sa.String(length=64), nullable=False),
        sa.Column("vkey", sa.Text(), nullable=False),
        sa.Column("activated_ms", sa.BigInteger(), nullable=False),
        sa.Column("activated_at_size", sa.BigInteger(), nullable=False),
        sa.Column("retired_ms", sa.BigInteger(), nullable=True),
        sa.Column("retired_at_size", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("region", "version"),
        if_not_exists=True,
    )
    # The border (onshore.border.tables).
    op.create_table(
        "border_bases",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column(
            "status", sa.String(length=16), nullable=False, comment="draft | approved | revoked (expired is computed)"
        ),
        sa.Column("spec", sa.Text(), nullable=False, comment="the BasisSpec as JSON"),
        sa.Column("approved_on", sa.String(length=10), nullable=True),
        sa.Column("expires_on", sa.String(length=10), nullable=True),
        sa.Column("validity_rule", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_border_bases_region", "border_bases", ["region"], if_not_exists=True)
    op.create_table(
        "border_provided",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column(
            "kind", sa.String(length=16), nullable=False, comment="pi (non-sensitive personal information) | sensitive"
        ),
        sa.Column("provided_ms", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.String(length=64), nullable=False),
        sa.Column("basis_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_border_provided_window",
        "border_provided",
        ["region", "kind", "provided_ms", "subject_ref"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_border_provided_subject",
        "border_provided",
        ["region", "subject_ref", "kind", "provided_ms"],
        if_not_exists=True,
    )
    op.create_index("ix_border_provided_basis", "border_provided", ["basis_id", "subject_ref"], if_not_exists=True)
    op.create_table(
        "border_opening_balances",
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="pi | sensitive | processor"),
        sa.Column("people", sa.BigInteger(), nullable=False),
        sa.Column("recorded_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("region", "year", "kind"),
        if_not_exists=True,
    )
    op.create_table(
        "border_transfers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, comment="released | denied"),
        sa.Column("destination", sa.String(length=3), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("people", sa.BigInteger(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_border_transfers_region", "border_transfers", ["region"], if_not_exists=True)
    op.create_table(
        "border_transfer_bases",
        sa.Column("transfer_id", sa.String(length=64), nullable=False),
        sa.Column("basis_id", sa.String(length=64), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("people", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("transfer_id", "basis_id"),
        if_not_exists=True,
    )


def downgrade() -> None:
    for table in (
        "border_transfer_bases",
        "border_transfers",
        "border_opening_balances",
        "border_provided",
        "border_bases",
        "ledger_signing_keys",
        "ledger_checkpoints",
        "ledger_nodes",
        "ledger_leaves",
        "ledger_entries",
        "frame_drops",
        "unclassified_signals",
        "consents",
        "bindings",
        "subjects",
        "records",
        "vehicles",
    ):
        op.drop_table(table)  # drops its indexes with it
